#!/usr/bin/env python3
# Writes N customers as an import CSV: scripts/import-csv.py N FILE [TAG]
"""Writes N customers as an import CSV: 6 of 7 enterprises (DE, plain registration numbers),
1 of 7 individuals, each with an address and a contact."""
import sys
n = int(sys.argv[1]); out = sys.argv[2]; tag = sys.argv[3] if len(sys.argv) > 3 else "A"
with open(out, "w") as f:
    f.write("kind,country,legal_name,registration_number,registered_capital,registered_capital_currency,"
            "founding_date,full_name,national_id,birth_date,address_line1,locality,postal_code,"
            "contact_name,contact_phone,contact_email\n")
    for row in range(1, n + 1):
        if row % 7 == 0:
            f.write(f"INDIVIDUAL,DE,,,,,,Person {tag} {row},ID{tag}{row:012},1980-01-01,"
                    f"Hauptstrasse {row},Berlin,10115,Person {row},+49 30 {row:08},p{row}@example.de\n")
        else:
            f.write(f"ENTERPRISE,DE,Import {tag} Handels GmbH {row},HRB {tag}{row},250000.00,EUR,2015-06-30,,,,"
                    f"Industriestrasse {row},Hamburg,20095,Buyer {row},+49 40 {row:08},buyer{row}@example.de\n")
