"""The conformance kit: the tests every Cascade state backend, cache backend, executor and blob store must pass.

Run it against any installed backend by giving its URI::

    python -m pytest --pyargs cascade_core.testing --cascade-uri sqlite:///kit.db
    python -m pytest --pyargs cascade_core.testing --cascade-uri redis://localhost:6379/15
    python -m pytest --pyargs cascade_core.testing --cascade-uri threads://
    python -m pytest --pyargs cascade_core.testing --cascade-uri file:///tmp/kit-blobs

The pytest plugin (``cascade_core.testing.plugin``, loaded automatically where
cascade-core is installed) adds the ``--cascade-uri`` option and the fixtures
``cascade_uri``, ``cascade_state_factory``, ``cascade_state_backend``, ``cascade_cache_backend``,
``cascade_executor_uri`` and ``cascade_blob_store``, which a
plugin's own tests may use too (they skip without ``--cascade-uri``). When the kit's own tests
are selected, a missing URI, or one that does not resolve (malformed, unknown scheme, plugin
not installed or failing to load, store not reachable), stops the session with one line and
exit code 4 instead of running tests that could only skip or error.

Optional capabilities (``RunCatalog`` on the state factory, ``CacheCatalog`` on the
cache, recorded ``created``/``updated`` timestamps) are tested only when the backend
has them; otherwise those tests are skipped with a reason that says "optional capability".
"""
