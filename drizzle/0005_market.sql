-- The market: products as data, payments, handled Stripe events, subscriptions.
CREATE TABLE "products" (
	"id" text PRIMARY KEY NOT NULL,
	"kind" text NOT NULL,
	"name" text NOT NULL,
	"description" text,
	"credits" integer NOT NULL,
	"price_cents" integer NOT NULL,
	"currency" text DEFAULT 'usd' NOT NULL,
	"interval" text,
	"plan_id" text REFERENCES "plans"("id"),
	"active" boolean DEFAULT true NOT NULL,
	"sort_order" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "products_kind_check" CHECK ("kind" IN ('credit_pack', 'subscription')),
	CONSTRAINT "products_amounts_check" CHECK ("credits" >= 0 AND "price_cents" > 0),
	CONSTRAINT "products_subscription_check" CHECK (("kind" = 'subscription') = ("interval" IS NOT NULL AND "plan_id" IS NOT NULL))
);
--> statement-breakpoint
CREATE TABLE "payment_transactions" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"user_id" uuid REFERENCES "users"("id") ON DELETE set null,
	"provider" text DEFAULT 'stripe' NOT NULL,
	"kind" text NOT NULL,
	"product_id" text,
	"checkout_session_id" text,
	"payment_intent_id" text,
	"invoice_id" text,
	"subscription_id" text,
	"customer_id" text,
	"amount_cents" integer NOT NULL,
	"currency" text NOT NULL,
	"credits_micro" bigint DEFAULT 0 NOT NULL,
	"status" text NOT NULL,
	"refunded_cents" integer DEFAULT 0 NOT NULL,
	"revoked_micro" bigint DEFAULT 0 NOT NULL,
	"unrecovered_micro" bigint DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX "payment_transactions_checkout_session_idx" ON "payment_transactions" ("checkout_session_id") WHERE invoice_id IS NULL;
--> statement-breakpoint
CREATE UNIQUE INDEX "payment_transactions_invoice_idx" ON "payment_transactions" ("invoice_id");
--> statement-breakpoint
CREATE INDEX "payment_transactions_payment_intent_idx" ON "payment_transactions" ("payment_intent_id");
--> statement-breakpoint
CREATE INDEX "payment_transactions_user_idx" ON "payment_transactions" ("user_id","created_at");
--> statement-breakpoint
CREATE TABLE "stripe_events" (
	"id" text PRIMARY KEY NOT NULL,
	"type" text NOT NULL,
	"outcome" text NOT NULL,
	"received_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "subscriptions" (
	"id" text PRIMARY KEY NOT NULL,
	"user_id" uuid NOT NULL REFERENCES "users"("id") ON DELETE cascade,
	"customer_id" text,
	"product_id" text,
	"plan_id" text NOT NULL,
	"status" text NOT NULL,
	"cancel_at_period_end" boolean DEFAULT false NOT NULL,
	"current_period_end" timestamp with time zone,
	"raw" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "subscriptions_user_idx" ON "subscriptions" ("user_id");
--> statement-breakpoint
-- Seed 001's packs and subscriptions; operators change them with the admin API.
INSERT INTO "products" ("id", "kind", "name", "credits", "price_cents", "interval", "plan_id", "sort_order") VALUES
  ('credits_10', 'credit_pack', '10 credits', 10, 99, NULL, NULL, 10),
  ('credits_50', 'credit_pack', '50 credits', 50, 499, NULL, NULL, 20),
  ('credits_100', 'credit_pack', '100 credits', 100, 899, NULL, NULL, 30),
  ('credits_550', 'credit_pack', '550 credits', 550, 3999, NULL, NULL, 40),
  ('credits_1200', 'credit_pack', '1,200 credits', 1200, 6999, NULL, NULL, 50),
  ('premium_monthly', 'subscription', 'Premium (monthly)', 200, 999, 'month', 'premium', 110),
  ('premium_yearly', 'subscription', 'Premium (yearly)', 2500, 9999, 'year', 'premium', 120),
  ('vip_monthly', 'subscription', 'VIP (monthly)', 1000, 2999, 'month', 'vip', 130),
  ('vip_yearly', 'subscription', 'VIP (yearly)', 13000, 29999, 'year', 'vip', 140)
ON CONFLICT ("id") DO NOTHING;
