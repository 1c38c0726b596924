"""``POST /v1/models/reload`` without a training worker: load the served checkpoint directory again and
publish it as a new version (with a worker, the route serves the worker's own checkpoint again).

A retrained model written over the checkpoint the service was started with (``--model DIR`` /
``service.model_dir``; files are replaced atomically by ``save_checkpoint``) goes live without a
restart. Only the server's own directory is read (a client never names a path). A checkpoint that
does not load leaves the old model serving; the refusal (409) names the reason.
"""

# no `from __future__ import annotations`: FastAPI reads the endpoints' annotations at runtime.

from pathlib import Path
from typing import Any

from intentrank.errors import IntentRankError
from intentrank.ranking.checkpoint import load_checkpoint
from intentrank.service.state import ServiceError, ServiceState


def reload_model_dir(state: ServiceState, model_dir: Path | None) -> dict[str, Any]:
    """Load ``model_dir`` again and publish it (a new version); 409 without a directory or when the
    checkpoint does not load (the old model keeps serving). Returns ``/v1/models``' body."""
    if model_dir is None:
        raise ServiceError(409, "no checkpoint directory to reload: the service was started without --model")
    try:
        model = load_checkpoint(model_dir)
    except (IntentRankError, OSError, RuntimeError) as err:
        msg = f"reload of {model_dir} failed, the old model keeps serving: {err}"
        raise ServiceError(409, msg.replace("\n", " ")[:500]) from None
    state.publish(model, f"reload of {model_dir}")
    return state.models()
