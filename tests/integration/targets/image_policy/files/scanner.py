"""Stand-in for a site's image scanner: trivy's JSON report (`trivy image --format json`), or
grype's (`grype -o json`) when called with --grype.

Findings depend on the image name only: every image has a LOW finding, images whose name contains
"vulnerable" also a CRITICAL one; an image whose name contains "broken" makes the scanner fail.
"""

import json
import sys

image = sys.argv[-1]
if "broken" in image:
    sys.exit("scanner: cannot pull " + image)
vulns = [{"VulnerabilityID": "CVE-2026-1000", "PkgName": "libfoo", "Severity": "LOW"}]
if "vulnerable" in image:
    vulns.append({"VulnerabilityID": "CVE-2026-0001", "PkgName": "openssl", "Severity": "CRITICAL"})
report = {
    "SchemaVersion": 2,
    "ArtifactName": image,
    # A result without findings carries no Vulnerabilities key, as in trivy's own reports.
    "Results": [
        {"Target": image, "Class": "os-pkgs", "Vulnerabilities": vulns},
        {"Target": "app", "Class": "lang-pkgs"},
    ],
}
if "--grype" in sys.argv:
    # grype writes severities capitalised.
    matches = [{"vulnerability": {"id": v["VulnerabilityID"], "severity": v["Severity"].title()}} for v in vulns]
    report = {"matches": matches, "source": {"target": {"userInput": image}}}
print(json.dumps(report))
