-- The sandbox's sales database: the runbook book's tables (sales, transactions, customers, products) with the
-- untidiness a weekly maintenance exists for, so every step of the Database Maintenance Runbook has real work:
--   * dead tuples in sales and transactions (updates and deletes, autovacuum off on those two tables, as on a
--     busy table autovacuum has not caught up with)  -> VACUUM ANALYZE removes them;
--   * idx_sales_date bloated by updates of its key (page splits, then dead entries)  -> REINDEX CONCURRENTLY;
--   * idx_customers_region and idx_products_stock never scanned  -> the unused-indexes report;
--   * primary keys and customers_email_key never scanned either, but they enforce constraints  -> not reported;
--   * pg_stat_statements and pgstattuple installed, as on the RDS instances the runbooks target.
-- Size: current_setting('autopilot.seed_rows') sales (runbook.sandbox.postgres.seed sets it).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
CREATE EXTENSION IF NOT EXISTS pgstattuple;

DROP TABLE IF EXISTS transactions, sales, customers, products CASCADE;

CREATE TABLE customers (
    customer_id bigserial PRIMARY KEY,
    email text NOT NULL UNIQUE,
    name text NOT NULL,
    region text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE products (
    product_id bigserial PRIMARY KEY,
    sku text NOT NULL UNIQUE,
    name text NOT NULL,
    price_cents integer NOT NULL,
    stock integer NOT NULL
);

CREATE TABLE sales (
    sale_id bigserial PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers,
    product_id bigint NOT NULL REFERENCES products,
    quantity integer NOT NULL,
    amount_cents bigint NOT NULL,
    sale_date date NOT NULL,
    status text NOT NULL DEFAULT 'completed'
) WITH (autovacuum_enabled = false);

CREATE TABLE transactions (
    transaction_id bigserial PRIMARY KEY,
    sale_id bigint NOT NULL REFERENCES sales ON DELETE CASCADE,
    kind text NOT NULL,
    amount_cents bigint NOT NULL,
    created_at timestamptz NOT NULL
) WITH (autovacuum_enabled = false);

INSERT INTO customers (email, name, region)
SELECT 'customer' || g || '@example.test', 'Customer ' || g, (ARRAY['eu', 'us', 'apac', 'latam'])[1 + (g % 4)::int]
FROM generate_series(1, greatest(current_setting('autopilot.seed_rows')::bigint / 10, 100)) AS g;

INSERT INTO products (sku, name, price_cents, stock)
SELECT 'SKU-' || lpad(g::text, 6, '0'), 'Product ' || g, 100 + (g * 37) % 9900, (g * 13) % 500
FROM generate_series(1, 500) AS g;

INSERT INTO sales (customer_id, product_id, quantity, amount_cents, sale_date)
SELECT 1 + (g * 7919) % greatest(current_setting('autopilot.seed_rows')::bigint / 10, 100),
       1 + (g * 104729) % 500,
       1 + g % 5,
       (1 + g % 5) * (100 + (g * 37) % 9900),
       date '2026-01-01' + ((g * 31) % 330)::int
FROM generate_series(1, current_setting('autopilot.seed_rows')::bigint) AS g;

INSERT INTO transactions (sale_id, kind, amount_cents, created_at)
SELECT sale_id, 'payment', amount_cents, sale_date + time '12:00'
FROM sales;

CREATE INDEX idx_sales_date ON sales (sale_date);
CREATE INDEX idx_sales_customer ON sales (customer_id);
CREATE INDEX idx_transactions_sale ON transactions (sale_id);
CREATE INDEX idx_customers_region ON customers (region);
CREATE INDEX idx_products_stock ON products (stock);

-- Corrections re-date half the sales, twice: every update moves the row in idx_sales_date (no HOT update),
-- splitting its pages and leaving dead entries behind.
UPDATE sales SET sale_date = sale_date + 17 WHERE sale_id % 2 = 0;
UPDATE sales SET sale_date = sale_date - 9, status = 'corrected' WHERE sale_id % 3 = 0;
UPDATE sales SET sale_date = sale_date + 1 WHERE sale_id % 5 <> 0;
-- Refunds: a tenth of the sales and their transactions go away.
DELETE FROM sales WHERE sale_id % 10 = 7;
UPDATE transactions SET kind = 'settled' WHERE transaction_id % 4 = 0;

-- The application's reads: the index on sales.customer_id and the one on transactions.sale_id are in use.
ANALYZE customers, products;
SELECT count(*) FROM sales WHERE customer_id = 42;
SELECT count(*) FROM transactions WHERE sale_id = 4242;
SELECT count(*) FROM sales WHERE sale_date = date '2026-03-01';
