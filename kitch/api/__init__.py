"""The HTTP side: Starlette routes for the JSON API (``create_app`` lives in ``kitch.api.app``)."""
