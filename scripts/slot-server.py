#!/usr/bin/env python3
"""An OpenAI-compatible server with a known capacity, for capacity searches.

It serves N slots. A request holds a slot while it is served: the first token comes after
--ttft, then --tokens - 1 more, --gap apart. Requests beyond N wait in arrival order, and
the wait counts in their time to first token. So the concurrency capacity under a TTFT
bound between the service's TTFT and TTFT + the time a waiter waits is exactly N, and a
Poisson-rate capacity is the M/D/N queue's.

    python3 scripts/slot-server.py --port 8123 --slots 4 --ttft 40ms --tokens 8 --gap 5ms

GET /v1/models, POST /v1/chat/completions and /v1/completions (streamed or not), on
127.0.0.1 unless --host says otherwise. Standard library only.
"""

import argparse
import asyncio
import json
import time


def seconds(text):
    text = text.strip()
    for unit, scale in (("ms", 1e-3), ("us", 1e-6), ("s", 1.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * scale
    return float(text)


class Server:
    def __init__(self, args):
        self.args = args
        self.slots = asyncio.Semaphore(args.slots)
        self.served = 0

    async def handle(self, reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if not await self.route(method, path.split("?")[0], body, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def route(self, method, path, body, writer):
        if method == "GET" and path.endswith("/models"):
            self.respond(writer, 200, {"object": "list", "data": [{"id": self.args.model, "object": "model"}]})
            return True
        if method == "POST" and path.endswith("/completions"):
            req = json.loads(body or b"{}")
            await self.complete(req, path.endswith("/chat/completions"), writer)
            return True
        self.respond(writer, 404, {"error": {"message": f"no {method} {path}"}})
        return True

    def respond(self, writer, status, obj):
        data = json.dumps(obj).encode()
        writer.write(
            f"HTTP/1.1 {status} {'OK' if status == 200 else 'Not Found'}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(data)}\r\n\r\n".encode() + data
        )

    async def complete(self, req, chat, writer):
        a = self.args
        tokens = max(1, min(a.tokens, int(req.get("max_tokens") or req.get("max_completion_tokens") or a.tokens)))
        stream = bool(req.get("stream"))
        prompt = 32
        async with self.slots:
            start = time.monotonic()
            if not stream:
                await asyncio.sleep(a.ttft + (tokens - 1) * a.gap)
                text = "x " * tokens
                choice = {"index": 0, "finish_reason": "length"}
                choice.update({"message": {"role": "assistant", "content": text}} if chat else {"text": text})
                self.respond(writer, 200, {"id": "slot", "object": "chat.completion", "model": a.model, "choices": [choice],
                                           "usage": {"prompt_tokens": prompt, "completion_tokens": tokens, "total_tokens": prompt + tokens}})
                await writer.drain()
                self.served += 1
                return
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")

            def event(obj):
                line = b"data: " + (obj if isinstance(obj, bytes) else json.dumps(obj).encode()) + b"\n\n"
                writer.write(b"%x\r\n%s\r\n" % (len(line), line))

            def delta(content, finish=None):
                if chat:
                    return {"id": "slot", "object": "chat.completion.chunk", "model": a.model,
                            "choices": [{"index": 0, "delta": content, "finish_reason": finish}]}
                return {"id": "slot", "object": "text_completion", "model": a.model,
                        "choices": [{"index": 0, "text": content.get("content", ""), "finish_reason": finish}]}

            if chat:
                event(delta({"role": "assistant", "content": ""}))
            await writer.drain()
            for i in range(tokens):
                # Deadlines from the start, so sleep overshoot does not add up.
                await asyncio.sleep(max(0.0, start + a.ttft + i * a.gap - time.monotonic()))
                event(delta({"content": "x "}, "length" if i == tokens - 1 else None))
                await writer.drain()
            event({"id": "slot", "object": "chat.completion.chunk", "model": a.model, "choices": [],
                   "usage": {"prompt_tokens": prompt, "completion_tokens": tokens, "total_tokens": prompt + tokens}})
            event(b"[DONE]")
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            self.served += 1


async def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8123)
    p.add_argument("--slots", type=int, default=4)
    p.add_argument("--ttft", type=seconds, default=seconds("40ms"))
    p.add_argument("--tokens", type=int, default=8)
    p.add_argument("--gap", type=seconds, default=seconds("5ms"))
    p.add_argument("--model", default="slots")
    args = p.parse_args()
    server = Server(args)
    srv = await asyncio.start_server(server.handle, args.host, args.port, backlog=1024)
    print(f"slot server on http://{args.host}:{args.port}/v1: {args.slots} slots, TTFT {args.ttft * 1e3:g} ms, "
          f"{args.tokens} tokens {args.gap * 1e3:g} ms apart", flush=True)
    async with srv:
        await srv.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
