"""A Python aiohttp target for comparison with the lab's Rust target.

Serves GET / on 127.0.0.1:9898, counts requests and prints
`TIMESTAMP: served N requests` every second and on exit, the format
`mite-perf run --target-cmd` reads.
"""
import asyncio
import time

from aiohttp import web

served = 0


async def index(request):
    global served
    served += 1
    return web.Response(text="hi")


async def report(app):
    async def loop():
        while True:
            await asyncio.sleep(1)
            print(f"{time.time()}: served {served} requests", flush=True)

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    print(f"{time.time()}: served {served} requests", flush=True)


app = web.Application()
app.router.add_get("/", index)
app.cleanup_ctx.append(report)

if __name__ == "__main__":
    web.run_app(app, host="127.0.0.1", port=9898, access_log=None, print=None)
