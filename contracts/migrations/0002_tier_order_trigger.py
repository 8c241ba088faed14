"""Contiguous tiers as a database guard, not only a form rule.

A line's tiers, ordered by position, must have strictly increasing ``up_to`` and exactly the
last one unbounded (DESIGN.md §3, revexos.pricing.validate_tiers). That is a rule over the whole
set of rows, so it is a deferred constraint trigger: a line's tiers are checked at commit, after
every row of the set was written. The table is named through TG_TABLE_SCHEMA because a deferred
trigger may run after the connection's search_path moved to another tenant.
"""
from django.db import migrations

CREATE = r"""
CREATE OR REPLACE FUNCTION contracts_pricetier_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    line_id bigint;
    problems integer;
BEGIN
    IF TG_OP = 'DELETE' THEN line_id := OLD.price_line_id; ELSE line_id := NEW.price_line_id; END IF;
    EXECUTE format(
        'SELECT count(*) FROM (
            SELECT up_to,
                   lag(up_to) OVER w AS previous_up_to,
                   lead(position) OVER w AS next_position
            FROM %I.contracts_pricetier WHERE price_line_id = $1
            WINDOW w AS (ORDER BY position)
         ) t
         WHERE (up_to IS NULL AND next_position IS NOT NULL)
            OR (up_to IS NOT NULL AND next_position IS NULL)
            OR (up_to IS NOT NULL AND previous_up_to IS NOT NULL AND up_to <= previous_up_to)',
        TG_TABLE_SCHEMA
    ) INTO problems USING line_id;
    IF problems > 0 THEN
        RAISE EXCEPTION 'tiers of price line % are not contiguous: up_to must increase and only the last tier may be unbounded', line_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'tier_contiguous';
    END IF;
    RETURN NULL;
END;
$$;
DROP TRIGGER IF EXISTS tier_contiguous ON contracts_pricetier;
CREATE CONSTRAINT TRIGGER tier_contiguous
    AFTER INSERT OR UPDATE OR DELETE ON contracts_pricetier
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION contracts_pricetier_check();
"""

DROP = r"""
DROP TRIGGER IF EXISTS tier_contiguous ON contracts_pricetier;
DROP FUNCTION IF EXISTS contracts_pricetier_check();
"""


class Migration(migrations.Migration):
    dependencies = [("contracts", "0001_initial")]

    operations = [migrations.RunSQL(CREATE, DROP)]
