"""Who may read a source's item in postrag: the source's answer mapped to users and groups.

The source names its readers as it knows them (app/providers/source_items.py Access); here they
become postrag users (by the account linked to them, app/services/user_accounts.py; never by
email, which identity providers do not all verify) and groups (by name), always with the
source's owner, whose access fetched the item. Readers the source names that postrag does not
know are left out. `everyone` leaves the document to its
collection's readers; an answer of None (the source could not say) fails closed: the owner alone.
Account ids are those of the source's connector (Atlassian's for Confluence and Jira).
"""

from __future__ import annotations

from app.providers.source_items import Access
from app.repositories import Conn, Row
from app.repositories import access_sets as access_repo
from app.services import user_accounts

ACCOUNTS = "atlassian"  # whose account ids a source's Access names (the only such sources)


def access_set(conn: Conn, source: Row, access: Access | None) -> int | None:
    """The id of the access set for `access` (None: the collection's readers)."""
    if access is not None and access.everyone:
        return None
    users = {int(source["owner_id"])}
    groups: set[int] = set()
    if access is not None:
        users |= set(user_accounts.user_ids(conn, ACCOUNTS, access.account_ids))
        groups |= set(access_repo.group_ids_by_name(conn, access.groups))
    key = ",".join([*(f"u{u}" for u in sorted(users)), *(f"g{g}" for g in sorted(groups))])
    return access_repo.find_or_make(conn, source["id"], key, sorted(users), sorted(groups))
