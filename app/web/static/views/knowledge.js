// The knowledge view: `#/knowledge` lists the collections, `#/knowledge/<id>[/<tab>]` opens one
// (its documents, sharing and sources). Back from Atlassian's consent (`/?connected=atlassian` or
// `?connect_error=`), it says how that went on the collection the connection was started from.
import { showCollection } from "./knowledge/collection.js";
import { showCollections } from "./knowledge/collections.js";
import { takeConnectResult } from "./knowledge/atlassian.js";

export async function mount(container, params, context) {
  const returned = takeConnectResult();
  if (returned?.hash && !params.length) {
    context.navigate(returned.hash);  // the collection whose Sources tab started the consent
    return null;
  }
  const id = Number(params[0]);
  if (params.length && Number.isInteger(id) && id > 0) {
    return showCollection(container, id, params[1], context);
  }
  return showCollections(container, context);
}
