"""The dependency audit, said plainly: `python .ci/audit.py [pip-audit arguments...]`.

Runs pip-audit with JSON output on the pinned requirements and reports how many packages it
could really check. Fails (exit 1) on any known vulnerability it finds, or when pip-audit
itself fails. When no vulnerability service answers (this project's own CI machines), pip-audit
skips every package as "could not be audited" yet says "No known vulnerabilities found"; this
says instead that nothing was audited, and passes, because no result is not a finding. The
GitHub workflow runs pip-audit with --strict, where the real index answers.
"""

import json
import subprocess
import sys
from pathlib import Path

PIP_AUDIT = Path(sys.executable).with_name("pip-audit")


def main() -> int:
    command = [str(PIP_AUDIT), "--progress-spinner", "off", "--format", "json", *sys.argv[1:]]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        print(f"pip-audit failed (exit {done.returncode}):\n{done.stderr}", file=sys.stderr)
        return 1
    packages = report["dependencies"]
    skipped = [p for p in packages if "skip_reason" in p]
    audited = [p for p in packages if "skip_reason" not in p]
    vulnerable = [p for p in audited if p.get("vulns")]
    for package in vulnerable:
        for vuln in package["vulns"]:
            fixes = ", ".join(vuln.get("fix_versions") or []) or "no fixed version yet"
            print(f"VULNERABLE {package['name']} {package['version']}: {vuln['id']} (fix: {fixes})")
    counts = f"{len(audited)} of {len(packages)} packages audited, {len(vulnerable)} vulnerable"
    print(f"pip-audit: {counts}")
    if skipped:
        reasons = sorted({p["skip_reason"].split(":")[0] for p in skipped})
        print(f"not audited: {len(skipped)} packages ({'; '.join(reasons)})")
    if not audited:
        print(
            "NOTHING WAS AUDITED: no vulnerability data reachable from this machine, so this"
            " stage proves nothing here (the GitHub workflow's audit job runs pip-audit --strict)."
        )
    if done.returncode != 0 and not vulnerable:
        print(f"pip-audit failed (exit {done.returncode}):\n{done.stderr}", file=sys.stderr)
    return 1 if vulnerable or done.returncode != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
