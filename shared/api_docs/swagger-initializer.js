// Swagger UI on the API's own document (GET /api/openapi.yaml, beside this page). No top bar: the
// page shows this API only; no validator badge: it would call an online service.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: new URL("../openapi.yaml", document.baseURI).href,
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
