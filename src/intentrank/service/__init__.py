"""The endless-feed HTTP service: slates from the newest model, events back into the store.

``create_app(state)`` (:mod:`intentrank.service.app`) builds the FastAPI app around a
:class:`~intentrank.service.state.ServiceState`: the live item table and retrieval
(:mod:`~intentrank.service.retrieval`), per-session memory of what was shown and the served slates
(:mod:`~intentrank.service.sessions`), scoring with the serving package's
:class:`~intentrank.serving.ranker.RankerPolicy` from a :class:`~intentrank.serving.incremental.ModelSlot`,
arms with their clickbait penalty, and one run of the event store per process. ``intentrank serve`` runs
it under uvicorn. This package import is light (settings only); the app and state import on demand.
"""
