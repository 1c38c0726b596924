"""``POST /v1/models/reload``: load the served checkpoint directory again and publish it as a new version.

A retrained model written over the checkpoint the service was started with (``--model DIR`` /
``service.model_dir``; files are replaced atomically by ``save_checkpoint``) goes live without a
restart. Only the server's own directory is read (a client never names a path). A checkpoint that
does not load leaves the old model serving; the refusal (409) names the reason.
"""

# no `from __future__ import annotations`: FastAPI reads the endpoints' annotations at runtime.

from pathlib import Path
from typing import Any

from fastapi import FastAPI

from intentrank.errors import IntentRankError
from intentrank.ranking.checkpoint import load_checkpoint
from intentrank.service.schemas import ModelsResponse
from intentrank.service.state import ServiceError, ServiceState


def mount(app: FastAPI, state: ServiceState, model_dir: Path | None, dependencies: list[Any]) -> None:
    """Add ``POST /v1/models/reload`` (token) reading ``model_dir`` (None: the route refuses with 409)."""

    @app.post("/v1/models/reload", response_model=ModelsResponse, tags=["admin"], dependencies=dependencies)
    def reload_model() -> dict[str, Any]:
        """Load the service's checkpoint directory again and serve it (a new version)."""
        if model_dir is None:
            raise ServiceError(
                409, "no checkpoint directory to reload: the service was started without --model"
            )
        try:
            model = load_checkpoint(model_dir)
        except (IntentRankError, OSError, RuntimeError) as err:
            msg = f"reload of {model_dir} failed, the old model keeps serving: {err}"
            raise ServiceError(409, msg.replace("\n", " ")[:500]) from None
        state.publish(model, f"reload of {model_dir}")
        return state.models()
