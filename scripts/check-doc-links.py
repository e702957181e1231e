#!/usr/bin/env python3
"""Checks the relative links of README.md and docs/*.md: every linked file exists and
every #anchor names a heading of the linked page (GitHub's heading slugs). Exit status 1
with one line per broken link; links with a scheme (https:, mailto:) are not fetched."""
import glob
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def slug(heading):
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path):
    found, in_code = set(), False
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("```"):
                in_code = not in_code
            elif not in_code and line.startswith("#"):
                found.add(slug(line.lstrip("#")))
    return found


def main():
    os.chdir(ROOT)
    pages = ["README.md"] + sorted(glob.glob("docs/*.md"))
    broken = 0
    for page in pages:
        with open(page, encoding="utf-8") as f:
            text = re.sub(r"```.*?```", "", f.read(), flags=re.S)
        for link in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", link):
                continue
            path, _, anchor = link.partition("#")
            target = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
            if not os.path.exists(target):
                print(f"{page}: {link}: no such file")
                broken += 1
            elif anchor and target.endswith(".md") and anchor not in anchors(target):
                print(f"{page}: {link}: no such heading")
                broken += 1
    print(f"doc links: {len(pages)} pages, {broken} broken")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
