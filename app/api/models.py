"""Placeholder: being written."""

from flask import Blueprint

bp = Blueprint("models", __name__, url_prefix="/api/v1")
