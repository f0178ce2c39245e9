// The search view (issue 21: being built).
import { heading } from "../ui.js";

export async function mount(container) {
  container.append(heading(1, "Search"));
}
