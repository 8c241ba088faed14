"""Usage events lose the two indexes nothing reads (see ``UsageEvent``'s docstring).

The key's unique constraint is kept and renamed rather than dropped and rebuilt, so a large table is
not re-indexed; only the LIKE index and the contract's single-column index are dropped."""

import django.db.models.deletion
from django.db import migrations, models


def _keep_unique_constraint(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.conname FROM pg_constraint c
            JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
            WHERE c.conrelid = 'billing_usageevent'::regclass AND c.contype = 'u'
              AND a.attname = 'transaction_id' AND array_length(c.conkey, 1) = 1
            """
        )
        (name,) = cursor.fetchone()
        cursor.execute(
            """
            SELECT i.relname FROM pg_index x
            JOIN pg_class i ON i.oid = x.indexrelid
            JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = ANY (x.indkey)
            WHERE x.indrelid = 'billing_usageevent'::regclass AND NOT x.indisunique
              AND a.attname = 'transaction_id' AND i.relname LIKE %s
            """,
            ["%_like"],
        )
        likes = [row[0] for row in cursor.fetchall()]
        qn = schema_editor.quote_name
        for like in likes:
            cursor.execute(f"DROP INDEX {qn(like)}")
        cursor.execute(
            f"ALTER TABLE billing_usageevent RENAME CONSTRAINT {qn(name)} TO {qn('usage_transaction_id_unique')}"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0007_external_invoices"),
        ("contracts", "0006_contract_renewal_lead_days"),
    ]

    operations = [
        migrations.AlterField(
            model_name="usageevent",
            name="contract",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="usage_events",
                to="contracts.contract",
            ),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="usageevent", name="transaction_id", field=models.CharField(max_length=200)
                ),
                migrations.AddConstraint(
                    model_name="usageevent",
                    constraint=models.UniqueConstraint(fields=("transaction_id",), name="usage_transaction_id_unique"),
                ),
            ],
            database_operations=[migrations.RunPython(_keep_unique_constraint, migrations.RunPython.noop)],
        ),
    ]
