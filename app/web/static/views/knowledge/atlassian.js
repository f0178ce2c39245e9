// Connecting Atlassian from a collection's Sources tab: the consent happens at Atlassian, whose
// callback sends the browser back to `/?connected=atlassian` or `/?connect_error=<why>`. The
// tab remembers where it was (this tab's session storage), and the result is said once there.
import { api, element } from "../../api.js";
import { attempt } from "../../ui.js";

const RETURN_KEY = "postrag.connect-return";
let result = null;  // {error} once back from the consent, until shown

// Back from the consent? Take the result out of the address; the hash to go back to, if any.
export function takeConnectResult() {
  const params = new URLSearchParams(location.search);
  if (!params.has("connected") && !params.has("connect_error")) return null;
  result = { error: params.get("connect_error") };
  params.delete("connected");
  params.delete("connect_error");
  const query = params.toString();
  const hash = sessionStorage.getItem(RETURN_KEY);
  sessionStorage.removeItem(RETURN_KEY);
  history.replaceState(null, "", `${location.pathname}${query ? `?${query}` : ""}${location.hash}`);
  return { hash };
}

// The consent's result as a node (an alert for an error), once; null when there is none.
export function connectNotice() {
  if (!result) return null;
  const { error } = result;
  result = null;
  if (error) {
    return element("p", { class: "error", role: "alert", id: "atlassian-error" },
      `Connecting Atlassian failed: ${error}`);
  }
  return element("p", { class: "ok", role: "status", id: "connect-status" }, "Atlassian is connected.");
}

// Ask for the consent URL (it sets the cookie binding the consent to this browser) and go.
export async function connectAtlassian(box) {
  await attempt(box, async () => {
    const started = await api("/api/v1/connectors/atlassian/authorize");
    sessionStorage.setItem(RETURN_KEY, location.hash);
    location.assign(started.authorize_url);
  });
}

// The sites the connection reaches, each with buttons starting a Confluence or Jira source.
export async function loadSites(hint, list, useSite, box) {
  let page;
  try {
    page = await api("/api/v1/connectors/atlassian/resources");
  } catch (error) {
    list.replaceChildren();
    // Not connected (404), not set up here (503), or to be connected again (409): a hint.
    if ([404, 409, 503].includes(error.status)) hint.textContent = error.message;
    else box.show(error);
    return;
  }
  hint.textContent = page.items.length
    ? "Connected. Start a source from one of its sites:" : "Connected, but to no site.";
  list.replaceChildren(...page.items.map((site) => element("li", {},
    `${site.name} (${site.url}) `,
    ...[["confluence", "Confluence"], ["jira", "Jira"]].map(([kind, name]) => element("button", {
      type: "button", class: "quiet", "aria-label": `${name} source from ${site.name}`,
      onclick: () => useSite(site, kind),
    }, `${name} source`)))));
}
