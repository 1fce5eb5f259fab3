"""Export the canonical model as versioned JSON Schema files (``schemas/jsonschema/<version>/``).

The files are committed: other platforms' integrators read them without installing Python, and a test
fails when the models and the files disagree, so a model change cannot slip out unversioned.
Run ``python -m schemas.export`` after changing a model.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from schemas.envelope import SCHEMA_VERSION, Envelope, event_types

__all__ = ["SCHEMA_DIR", "render_schemas", "write_schemas"]

SCHEMA_DIR = Path(__file__).parent / "jsonschema" / SCHEMA_VERSION


def render_schemas() -> dict[str, str]:
    """File name → JSON text for the envelope and every event payload."""
    docs: dict[str, dict[str, Any]] = {"envelope.json": Envelope.model_json_schema()}
    for name, model in sorted(event_types().items()):
        schema = model.model_json_schema()
        schema["$id"] = f"urn:shenguan:schema:{SCHEMA_VERSION}:{name}"
        docs[f"{name}.json"] = schema
    return {name: json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True) + "\n" for name, doc in docs.items()}


def write_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write every schema file into ``directory``; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_schemas().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_schemas(Path(sys.argv[1]) if len(sys.argv) > 1 else SCHEMA_DIR):
        print(path)
