"""The people in care (対象者): their records, care teams and the rules for
changing them."""
