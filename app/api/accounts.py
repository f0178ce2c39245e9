"""/api/v1/users/{id}/accounts: the accounts a user has at a source (an Atlassian account id),
which map a source's permissions to the user. The Atlassian consent links its account by
itself; admins link and unlink the others."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from flask import Blueprint
from pydantic import BaseModel, ConfigDict, Field

from app.api.endpoint import db, endpoint
from app.services import user_accounts

bp = Blueprint("accounts", __name__, url_prefix="/api/v1/users/<int:user_id>/accounts")


class Account(BaseModel):
    provider: str = Field(description="the source whose account this is: atlassian")
    account_id: str = Field(description="the account's id there (Atlassian: its account id)")
    linked_by: Literal["consent", "admin"] = Field(
        description="consent: proven by the user's Atlassian consent; admin: set by an admin"
    )
    linked_at: datetime


class AccountList(BaseModel):
    items: list[Account]


class AccountLink(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    account_id: str = Field(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9:_.@-]+$",
        description="Atlassian: the account id (e.g. 557058:f58131cb-b67d-43c7-b30d-6b58d40bd077)",
    )


@bp.get("")
@endpoint(
    summary="A user's linked accounts (your own, or anyone's for an admin)",
    tag="users",
    response=AccountList,
    errors=(404,),
)
def list_accounts(user_id: int) -> AccountList:
    rows = user_accounts.of_user(db(), user_id)
    return AccountList(items=[Account(**row) for row in rows])


@bp.put("/<provider>")
@endpoint(
    summary="Link a user's account at a source (admin); replaces an earlier link of either",
    tag="users",
    auth="admin",
    body=AccountLink,
    response=Account,
    errors=(404, 422),
)
def link_account(user_id: int, provider: str, body: AccountLink) -> Account:
    row = user_accounts.link_by_admin(db(), user_id, provider, body.account_id)
    return Account(**row)


@bp.delete("/<provider>")
@endpoint(
    summary="Unlink a user's account at a source (admin)",
    tag="users",
    auth="admin",
    status=204,
    errors=(404,),
)
def unlink_account(user_id: int, provider: str) -> None:
    user_accounts.unlink_by_admin(db(), user_id, provider)
