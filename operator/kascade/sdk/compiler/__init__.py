"""DAG objects → Pipeline manifests (host side: uses the API models and the engine).

Not imported by ``kascade.sdk`` itself, so the runtime in a task's pod never
needs pydantic. ``compile_paths`` is what ``kascade compile``/``validate``/
``apply`` use; ``compile_dag`` compiles one DAG object.
"""
