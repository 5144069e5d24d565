"""codexapi's first-party plugins, installed as package ``codexapi_plugins``.

Each module is a plain plugin with ``@codexapi.hookimpl`` functions, registered exactly the
way a third-party plugin is (see docs/plugins.md).
"""
