// Whistle: renders the service's AsyncAPI document on /asyncapi from /asyncapi.json.
(function () {
  var root = document.getElementById("asyncapi");
  fetch(root.getAttribute("data-spec-url"), { headers: { accept: "application/json" } })
    .then(function (response) {
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.text();
    })
    .then(function (schema) {
      window.AsyncApiStandalone.render(
        {
          schema: schema,
          config: {
            show: { sidebar: true, info: true, servers: true, operations: true,
                    messages: true, schemas: true, errors: true },
            expand: { messageExamples: true },
            sidebar: { showServers: "byDefault", showOperations: "byDefault" },
          },
        },
        root
      );
    })
    .catch(function (error) {
      root.textContent = "无法加载 AsyncAPI 文档 / cannot load the AsyncAPI document: " + error;
    });
})();
