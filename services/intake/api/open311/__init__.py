"""Open311 GeoReport v2 over HTTP: the routes, the JSON/XML formats and API-key auth."""
