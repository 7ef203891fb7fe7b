#!/usr/bin/env python3
"""An OpenAI-compatible server with a known capacity, for capacity searches.

It serves N slots. A request holds a slot while it is served: the first token comes after
--ttft, then --tokens - 1 more, --gap apart. Requests beyond N wait in arrival order, and
the wait counts in their time to first token. So the concurrency capacity under a TTFT
bound between the service's TTFT and TTFT + the time a waiter waits is exactly N, and a
Poisson-rate capacity is the M/D/N queue's.

    python3 scripts/slot-server.py --port 8123 --slots 4 --ttft 40ms --tokens 8 --gap 5ms

GET /v1/models, POST /v1/chat/completions and /v1/completions (streamed or not), and GET
/metrics in vLLM's names (requests running and waiting, finished requests, tokens, and a
time-to-first-token histogram measured from each request's arrival, the wait for a slot
included), on 127.0.0.1 unless --host says otherwise. Standard library only.
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
        self.running = 0
        self.waiting = 0
        self.tokens = [0, 0]
        # Time to first token from arrival: bucket edges (vLLM's, with finer ones around 50 ms), cumulative counts.
        self.edges = [0.001, 0.005, 0.01, 0.02, 0.04, 0.045, 0.05, 0.055, 0.06, 0.08, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]
        self.ttft = [0] * (len(self.edges) + 1)
        self.ttft_sum = 0.0

    def first_token(self, arrived):
        t = time.monotonic() - arrived
        self.ttft_sum += t
        for i, le in enumerate(self.edges):
            if t <= le:
                self.ttft[i] += 1
        self.ttft[-1] += 1

    def metrics(self):
        out = ["# TYPE vllm:num_requests_running gauge", f'vllm:num_requests_running{{engine="0"}} {self.running}',
               "# TYPE vllm:num_requests_waiting gauge", f'vllm:num_requests_waiting{{engine="0"}} {self.waiting}',
               "# TYPE vllm:request_success counter", f'vllm:request_success_total{{finished_reason="length"}} {self.served}',
               "# TYPE vllm:prompt_tokens counter", f"vllm:prompt_tokens_total {self.tokens[0]}",
               "# TYPE vllm:generation_tokens counter", f"vllm:generation_tokens_total {self.tokens[1]}",
               "# TYPE vllm:time_to_first_token_seconds histogram"]
        for le, c in zip(self.edges, self.ttft):
            out.append(f'vllm:time_to_first_token_seconds_bucket{{le="{le}"}} {c}')
        out += [f'vllm:time_to_first_token_seconds_bucket{{le="+Inf"}} {self.ttft[-1]}',
                f"vllm:time_to_first_token_seconds_sum {self.ttft_sum}", f"vllm:time_to_first_token_seconds_count {self.ttft[-1]}"]
        return "\n".join(out) + "\n"

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
        if method == "GET" and path == "/metrics":
            data = self.metrics().encode()
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: %d\r\n\r\n%s" % (len(data), data))
            return True
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
        arrived = time.monotonic()
        self.waiting += 1
        async with self.slots:
            self.waiting -= 1
            self.running += 1
            try:
                await self.serve(chat, writer, stream, tokens, prompt, arrived)
            finally:
                self.running -= 1
                self.tokens[0] += prompt
                self.tokens[1] += tokens

    async def serve(self, chat, writer, stream, tokens, prompt, arrived):
        a = self.args
        start = time.monotonic()
        if not stream:
            await asyncio.sleep(a.ttft + (tokens - 1) * a.gap)
            self.first_token(arrived)
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
            if i == 0:
                self.first_token(arrived)
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
