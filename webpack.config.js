// Builds the demo site in www/ against pkg/, the exact package users install,
// so the demo cannot drift from the release. No experiments flag: the glue
// finds its .wasm with new URL("insitu_bg.wasm", import.meta.url), which
// webpack 5 emits as an asset on its own.
const path = require("path");
const HtmlWebpackPlugin = require("html-webpack-plugin");

// The slot copy lives in one file: the page renders each slot's fallback
// variant from it at build time (shown when the wasm cannot load), and the
// runtime renders the chosen variants from the same data.
const slots = require("./www/slots.json");

module.exports = (_env, argv) => {
  const production = argv.mode === "production";
  return {
    mode: production ? "production" : "development",
    entry: path.resolve(__dirname, "www/index.js"),
    output: {
      path: path.resolve(__dirname, "dist"),
      filename: production ? "[name].[contenthash:8].js" : "[name].js",
      clean: true,
    },
    // Source maps as separate files: no eval(), so the page runs under a strict CSP too.
    devtool: production ? false : "source-map",
    resolve: { alias: { insitu: path.resolve(__dirname, "pkg") } },
    plugins: [
      new HtmlWebpackPlugin({
        template: path.resolve(__dirname, "www/index.html"),
        templateParameters: { slots },
      }),
    ],
    performance: { hints: false },
    devServer: {
      static: false,
      host: "127.0.0.1",
      port: 8080,
      // No websocket, no reload client, no overlay: the page makes only its own
      // requests, which the end-to-end test asserts.
      hot: false,
      liveReload: false,
      client: false,
      webSocketServer: false,
    },
  };
};
