"""The published API description: the classify routes are answered by the edge
(service.front.api.classify_routes), and FastAPI still documents them exactly as it did when it
answered them."""

from __future__ import annotations

import json
from pathlib import Path

from service.config import Settings
from service.front.app import create_app

PUBLISHED = Path(__file__).with_name("openapi.json")


def test_the_openapi_document_is_the_published_one() -> None:
    # A deliberate API change updates the file: create_app(Settings()).api.openapi(), dumped with
    # json.dumps(..., indent=1, sort_keys=True).
    document = create_app(Settings()).api.openapi()
    assert document == json.loads(PUBLISHED.read_text())
