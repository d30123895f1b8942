// The console's field tools: a field link for a team, and the pictures kept with an incident (field photos,
// pinned snapshots) shown in its timeline.
import { t } from "./i18n.js";
import * as fmt from "./format.js";
import { postJSON, enc } from "./api.js";
import { describe } from "./incidents.js";

/** Make a field link to the incident for ``team`` (or none); returns the message that shows it once. */
export async function fieldLink(incidentId, team) {
  const link = await postJSON(`/api/v1/incidents/${enc(incidentId)}/field-links`, { team: team || null });
  return t("console.field_link_made", { time: fmt.dateTime(link.expires_at), url: link.url });
}

/** Show the picture of a timeline entry (when it names one) in ``img``. */
export function showPicture(img, incidentId, entry) {
  img.hidden = !entry.media_id;
  const src = entry.media_id ? `/api/v1/incidents/${enc(incidentId)}/media/${enc(entry.media_id)}` : null;
  if (src && img.getAttribute("src") !== src) { img.src = src; img.alt = entry.caption || describe(entry); }
}
