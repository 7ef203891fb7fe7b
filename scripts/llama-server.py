"""Starts llama-cpp-python's OpenAI-compatible server with extra buffer types off.

On processors with AMX, llama.cpp repacks weights into extra buffer types, and that path
crashes on the first prompt of more than one token (ggml-org/llama.cpp#20824). llama.cpp's
own server has `--no-repack` for it; llama-cpp-python's server has no flag, so this wrapper
sets `use_extra_bufts = False` in the default model parameters that every model load starts
from, then hands the command line to the server unchanged.

Usage: python scripts/llama-server.py [llama_cpp.server arguments]
"""

import sys

import llama_cpp.llama_cpp as bindings

_defaults = bindings.llama_model_default_params


def _without_extra_bufts():
    params = _defaults()
    if not hasattr(params, "use_extra_bufts"):
        sys.exit(
            "error: this llama-cpp-python has no use_extra_bufts model parameter; "
            "install the version scripts/llama-server.sh pins"
        )
    params.use_extra_bufts = False
    return params


bindings.llama_model_default_params = _without_extra_bufts

if __name__ == "__main__":
    from llama_cpp.server.__main__ import main

    main()
