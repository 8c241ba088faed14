"""``AnyOf``: a column equal to any value of a list, sent as one array parameter.

``filter(number__in=refs)`` writes ``IN (%s, %s, …)`` with a placeholder per value, and the driver's
client-side binding parses that statement and quotes each value in Python: for the thousand
references of a usage batch, a tenth of the request. ``AnyOf(F("number"), refs)`` writes
``number = ANY(%s::varchar[])``: one parameter, adapted as a single array literal.
Used as a filter expression (``filter(AnyOf(F("pk"), ids))``, or inside ``Q``).
"""

from __future__ import annotations

from django.db.models import Lookup


class AnyOf(Lookup):
    lookup_name = "any_of"
    prepare_rhs = False  # a list, not one value of the field

    def get_db_prep_lookup(self, value, connection):
        field = self.lhs.output_field
        return "%s", [[field.get_db_prep_value(v, connection, prepared=False) for v in value]]

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        # The array's type named (an empty list, a list of ints), without a length: a cast to
        # varchar(32) would cut a longer value to one that matches.
        db_type = self.lhs.output_field.db_type(connection).split("(")[0]
        return f"{lhs} = ANY({rhs}::{db_type}[])", [*lhs_params, *rhs_params]
