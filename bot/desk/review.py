"""Compliance review pages (/review/...) and their JSON API."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["review"])
api_router = APIRouter(tags=["transcripts"])
