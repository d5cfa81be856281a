"""A Python SDK client (1.x or 2.x, whichever this interpreter has) that lists the tools and
calls each tool of a plan, as a user's script would with the SDK's defaults.

    python py_sdk.py PLAN.json

PLAN holds {"url", "token", "mode", "transport", "calls": [{"name", "arguments"}], "out"}
("transport": "sse" for the legacy HTTP+SSE endpoint, else Streamable HTTP), or instead of
"url" and "token" a "stdio" server ({"command", "args", "env"}; 2.x only), whose stderr is
this process's stderr; the answer
({"tools": [...], "results": [{"name", "is_error", "text"}]}) is written to "out", so the
process's own stdout and stderr carry only what the SDK printed. Logging is at WARNING, the
level a user sees.
"""

import json
import logging
import sys

import anyio

logging.basicConfig(level=logging.WARNING, stream=sys.stderr)


def text_of(result) -> str:
    return "".join(getattr(block, "text", "") for block in result.content)


async def run_v2(plan: dict) -> dict:
    import httpx2
    from mcp import Client, StdioServerParameters
    from mcp.client.stdio import stdio_client
    from mcp.client.streamable_http import streamable_http_client

    if "stdio" in plan:
        async with Client(stdio_client(StdioServerParameters(**plan["stdio"])), mode=plan.get("mode", "auto")) as client:
            return await list_and_call(client, plan["calls"])
    headers = {"Authorization": "Bearer " + plan["token"]}
    if plan.get("transport") == "sse":
        from mcp.client.sse import sse_client

        async with Client(sse_client(plan["url"], headers=headers), mode="legacy") as client:
            return await list_and_call(client, plan["calls"])
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=300)) as http, Client(
        streamable_http_client(plan["url"], http_client=http), mode=plan.get("mode", "auto")
    ) as client:
        return await list_and_call(client, plan["calls"])


async def list_and_call(client, calls: list[dict]) -> dict:
    """2.x: the tool names, then each call's outcome."""
    tools = [tool.name for tool in (await client.list_tools()).tools]
    results = []
    for call in calls:
        result = await client.call_tool(call["name"], call["arguments"])
        results.append({"name": call["name"], "is_error": bool(result.is_error), "text": text_of(result)})
    return {"tools": tools, "results": results}


async def run_v1(plan: dict) -> dict:
    import httpx
    from mcp import ClientSession
    from mcp.client import streamable_http

    headers = {"Authorization": "Bearer " + plan["token"]}
    if plan.get("transport") == "sse":
        from mcp.client.sse import sse_client

        http, opened = None, sse_client(plan["url"], headers=headers)
    elif hasattr(streamable_http, "streamable_http_client"):  # 1.2x: the non-deprecated spelling
        http = httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(30, read=300))
        opened = streamable_http.streamable_http_client(plan["url"], http_client=http)
    else:  # 1.9
        http, opened = None, streamable_http.streamablehttp_client(plan["url"], headers=headers)
    try:
        async with opened as (read, write, *_), ClientSession(read, write) as session:
            await session.initialize()
            tools = [tool.name for tool in (await session.list_tools()).tools]
            results = []
            for call in plan["calls"]:
                result = await session.call_tool(call["name"], call["arguments"])
                results.append({"name": call["name"], "is_error": bool(result.isError), "text": text_of(result)})
    finally:
        if http is not None:
            await http.aclose()
    return {"tools": tools, "results": results}


def main() -> None:
    with open(sys.argv[1]) as file:
        plan = json.load(file)
    from importlib.metadata import version

    run = run_v1 if version("mcp").startswith("1.") else run_v2
    answer = anyio.run(run, plan)
    with open(plan["out"], "w") as file:
        json.dump(answer, file)


if __name__ == "__main__":
    main()
