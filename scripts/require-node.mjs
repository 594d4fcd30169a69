// Plain JavaScript on purpose: it must run, and explain itself, on the old Node
// a machine may carry. npm puts node_modules/.bin first on PATH for scripts, so
// after `npm install` the `node` dependency (Node 24) is the one found here.
const [major] = process.versions.node.split('.').map(Number);
if (major < 24) {
  console.error(
    `chat-backend needs Node.js 24 or newer; this is Node ${process.versions.node} (${process.execPath}).\n` +
      'Run `npm install` first: it installs Node 24 into node_modules (the `node` package), ' +
      'and `npm start` / `npm test` use it. Running `node src/main.ts` directly needs Node 24 on your PATH.',
  );
  process.exit(1);
}
