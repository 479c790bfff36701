"""The conformance kit: the tests every Cascade state and cache backend must pass.

Run it against any installed backend by giving its URI::

    python -m pytest --pyargs cascade_core.testing --cascade-uri sqlite:///kit.db
    python -m pytest --pyargs cascade_core.testing --cascade-uri redis://localhost:6379/15

The pytest plugin (``cascade_core.testing.plugin``, loaded automatically where
cascade-core is installed) adds the ``--cascade-uri`` option and the fixtures
``cascade_uri``, ``cascade_state_factory``, ``cascade_state_backend`` and ``cascade_cache_backend``, which a
plugin's own tests may use too. Without ``--cascade-uri`` the kit's tests are skipped.

Optional capabilities (``RunCatalog`` on the state factory, ``CacheCatalog`` on the
cache, recorded ``created``/``updated`` timestamps) are tested only when the backend
has them; otherwise those tests are skipped with a reason that says "optional capability".
"""
