"""kefu's Rasa launcher: `python -m kefu.rasa <rasa arguments>`.

Rasa's own command line with kefu's action deadline and the runtime fixes that
KEFU_RUNTIME_FIXES selects installed first; a fix that cannot be verified against the
installed Rasa stops the start with its reason.
"""

from __future__ import annotations

import sys


def main() -> int:
    from kefu.rasa import deadline, fixes

    try:
        installed = fixes.install()
    except fixes.RuntimeFixError as e:
        print(f"kefu: {e}", file=sys.stderr)
        print("kefu: run `kefu doctor`, or set KEFU_RUNTIME_FIXES=none", file=sys.stderr)
        return 2
    timeout = deadline.install()
    print(
        f"kefu: Rasa {fixes.rasa_version()}, action deadline {timeout}s, runtime fixes: "
        + (", ".join(installed) or "none"),
        file=sys.stderr,
        flush=True,
    )
    from rasa.__main__ import main as rasa_main

    sys.argv = ["rasa", *sys.argv[1:]]
    rasa_main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
