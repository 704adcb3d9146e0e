// A client nobody in this project wrote: the official TypeScript MCP SDK, against a running macha-mcp HTTP server.
// Usage: node client.mjs URL TOKEN. Prints one JSON object: the tools listed, a query_logs call, a resource read.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, token] = process.argv.slice(2);
const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${token}` } },
});
const client = new Client({ name: "ts-sdk-test-client", version: "1.0.0" });
await client.connect(transport);
const tools = await client.listTools();
const logs = await client.callTool({ name: "query_logs", arguments: { text: "sshd", since: "2000-01-01", limit: 5 } });
const hosts = await client.readResource({ uri: "macha://hosts" });
const bad = await client.callTool({ name: "host_overview", arguments: { host: "no-such-host" } });
console.log(JSON.stringify({
  protocol: transport.protocolVersion ?? null,
  tools: tools.tools.map((t) => t.name),
  query_logs: { isError: logs.isError ?? false, text: logs.content[0].text },
  hosts: hosts.contents[0].text,
  bad: { isError: bad.isError ?? false, text: bad.content[0].text },
}));
await client.close();
