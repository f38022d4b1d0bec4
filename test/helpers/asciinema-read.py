# Reads an asciicast file with asciinema's own reader (the Debian package asciinema), as
# `asciinema cat` does but without a terminal: prints {"header": ..., "events": [...]} as JSON.
import json
import sys

from asciinema import asciicast

with asciicast.open_from_url(sys.argv[1]) as a:
    print(json.dumps({"version": a.version, "header": a.v2_header, "events": list(a.events())}))
