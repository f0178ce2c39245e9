"""OCR benchmark (issue 23): seconds per scanned page, and the memory of the process reading it.

    .venv/bin/python bench/ocr.py [--pages 5] [--lines 40]

Makes a PDF of --pages A4 pages, each a picture (150 dpi, as a scanner gives) of --lines lines of
made-up sentences and no text layer, and reads it as the worker does: extraction in a child
process (app/services/extraction_process.py), PDFium rendering, RapidOCR on one onnxruntime
thread. Prints seconds per page (the child's start and the models' loading included, once per
file) and the words read as drawn; then reads it again in this process to print the peak
resident memory a process reading it reaches (this process's, benchmark's own data included).
"""

from __future__ import annotations

import argparse
import io
import random
import resource
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.services import extraction, extraction_process  # noqa: E402

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf")  # a book face, where there
WORDS = "walrus zebra harbour copper lantern meadow orbit pepper violin quartz ribbon".split()


def scanned_pdf(pages: int, lines: int, seed: int = 7) -> tuple[bytes, list[str]]:
    from fpdf import FPDF
    from PIL import Image, ImageDraw, ImageFont

    rng = random.Random(seed)
    font = ImageFont.truetype(str(FONT), 24) if FONT.exists() else ImageFont.load_default(size=24)
    pdf, words = FPDF(), []
    for _ in range(pages):
        image = Image.new("L", (1240, 1754), 255)  # A4 at 150 dpi
        draw = ImageDraw.Draw(image)
        for line in range(lines):
            text = " ".join(rng.choice(WORDS) for _ in range(9))
            words += text.split()
            draw.text((100, 100 + line * 38), text, fill=0, font=font)
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        pdf.add_page()
        pdf.image(buffer, x=0, y=0, w=210, h=297)
    return bytes(pdf.output()), words


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=5)
    parser.add_argument("--lines", type=int, default=40)
    args = parser.parse_args()
    data, words = scanned_pdf(args.pages, args.lines)
    started = time.monotonic()
    extracted = extraction_process.extract(
        data, "application/pdf", "scan.pdf", checkpoint=lambda: None, memory_mb=0, timeout_s=3600
    )
    elapsed = time.monotonic() - started
    read = Counter(extracted.text.split())
    right = sum((read & Counter(words)).values())
    print(f"{args.pages} pages of {args.lines} lines: {elapsed / args.pages:.1f} s a page")
    print(f"words read as drawn: {right} of {len(words)} (PP-OCR drops some spaces)")
    extraction.extract(data, "application/pdf", "scan.pdf")  # here, to see its memory
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of a process reading it: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
