"""Parse the golden index pages with pip's own simple-API parser.

Run from stableset/testdata/pages: python3 pip_check.py
For each project it parses index.html and index.json as pip does and
checks that both give the same links, yank reasons, requires-python and
metadata hashes, and that every URL resolves to the repository root's
packages/ tree from https://repo.example/simple/<project>/.
"""
import glob, json, os, sys
from pip._internal.index.collector import IndexContent, parse_links

base = "https://repo.example/simple/"
fail = 0
for html_path in sorted(glob.glob("*.html")):
    name = html_path[:-5]
    project = json.load(open(name + ".json"))["name"]
    url = base + project + "/"
    res = {}
    for path, ctype in ((html_path, "text/html"), (name + ".json", "application/vnd.pypi.simple.v1+json")):
        page = IndexContent(open(path, "rb").read(), ctype, "utf-8", url)
        res[ctype] = [
            (l.filename, l.url, l.requires_python, l.yanked_reason,
             l.metadata_file_data.hashes if l.metadata_file_data else None,
             l._hashes)
            for l in parse_links(page)
        ]
    h, j = res["text/html"], res["application/vnd.pypi.simple.v1+json"]
    ok = h == j and all(r[1].startswith("https://repo.example/packages/") and r[5] for r in j)
    print(("ok  " if ok else "FAIL"), name, len(h), "links")
    for row in h:
        print("     ", row)
    fail |= not ok
sys.exit(fail)
