"""Placeholder: being written."""

from flask import Blueprint

bp = Blueprint("preferences", __name__, url_prefix="/api/v1")
