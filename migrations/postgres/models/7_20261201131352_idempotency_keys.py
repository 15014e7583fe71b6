from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        CREATE TABLE IF NOT EXISTS "idempotency_keys" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "scope" VARCHAR(100) NOT NULL,
    "key" VARCHAR(255) NOT NULL,
    "fingerprint" VARCHAR(64) NOT NULL,
    "status_code" SMALLINT,
    "response_headers" TEXT,
    "response_body" TEXT,
    "created_at" TIMESTAMPTZ NOT NULL,
    "expires_at" TIMESTAMPTZ NOT NULL,
    "user_id" INT REFERENCES "users" ("id") ON DELETE CASCADE,
    CONSTRAINT "uid_idempotency_scope_0666a8" UNIQUE ("scope", "key")
);
CREATE INDEX IF NOT EXISTS "idx_idempotency_expires_ae52bb" ON "idempotency_keys" ("expires_at");
COMMENT ON TABLE "idempotency_keys" IS 'A request sent with an Idempotency-Key, and its response for retries.';"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        DROP TABLE IF EXISTS "idempotency_keys";"""


MODELS_STATE = (
    "eJztXWtv2zYX/iuEPqVAVrRJlmzZiwFO4rbeUnuw3XWXDCpj0bYQmfJIqa6x9b+/JCVZN1"
    "KWFNuTBX4JYoqHkp7Dy+FzzqH+MRauhRz68hYSy7gG/xgYLhD7J1V+Cgy4XMalvMCDj46o"
    "OGE1RAl8pB6BE48VTqFDESuyEJ0Qe+nZLuZVBxgByyZowguAOwUQrFxinYKV7c2B7VHgrj"
    "B4MxqOAJ3MkeU76CVv2XInrGkbz+o28oAfcPczImtRFcwhZVJTl6zYswP+AqcAYouVEcRq"
    "USTKwJS4C+DNEZjahHrAsxdItP8prPUJrCB9wJ5PMLIAe5iTJ7T0Eg8yt6nnkjUrmSOcEL"
    "MpiISm7Pln0MYvxIv62P7bR6bnzhC7L2Gv++efBn9kgUL00sZff7GfNrbQF0SDOj5ltbkO"
    "WIXPSNRm7UDPYDVlV6kHvVQ13uLyyZzayEn3A1vcW5Sb3nopynrYeyMq8gYezYnr+AscV1"
    "6uvbmLN7Vt7PHSGcKIsLvy5j3i8+6BfccJu1HUYwIE4irBWyZkLDSFvsM7GZcOHiAuM0yz"
    "Pxibo+7YNI1cB4wkEt0pLJq4mHde9qhUvP2MP8I3Z68vri6+O7+8+I5VEY+5Kbn6Gtw6Bi"
    "YQFPD0x8ZXcR16MKgh1BSDGqsyh+3tHJIu9hcC4B57KognKAd0qoEM3uxFsnhH6BYBHhXE"
    "iMejuD7kxpvB8GNneHcdDbcHPOz+2h2OutfRYMuOcIVKFvCL6SA88+bsZxH8v3aGt+86w5"
    "OrF7xll01JwUTVDy+c8StcP7E+4oGRVsaN6zoIYnlnj4UyCnhkUvvSQDQK9tDpCyC9GQzu"
    "ecsLSv92REFvnAH3w/ub7vDktcCcVbI9lBwKMdSbmadOt98IH67LGxitjIp9vt/9yEBGqw"
    "d83+0M+73+22vA+hHBDH7R/3u8Auv+Nq8z7Ma1CIrq1RkVr1+VGBavXynHBb+U1la4POTU"
    "dcdQ5uuhfGTEUhk9WaHYy+if5kxUuxgm49777mjcef9LaqzcdcZdfuVMlK4zpSeXGXVsGg"
    "Efe+N3gP8Efwz6XQGnS70ZEXeM643/MPgzQd9zTeyuTGglMYmKo6LsYHy02Vhd5zX8xnGh"
    "YpVPSWU0POViJbQazmNHoNS7wYeb+y74Zdi97Y16g35ai+Jies4bdjv3mWE0pYSalj2d2h"
    "P22NXQlshqzEtgTj20zAM9WkDHUdqvkcx2C7b58IY27PnZ1eXGfOU/ikyn0fvO/X1+zSZo"
    "SSvsAqLqtVCsNd2/avQ+IAbSgUuKqkAZC2gw82BSzwyMKGTVsFJk8juwVxo2DbTJXOE8hl"
    "mJkEhIHG4ANZ6YiBHl3FI1RBMSGtEQUU6eTZ+kTE9E3mXMPZcge4Z/RuvcfjcDakjDfgyb"
    "OTJwv0a9JyqN50cCVxu2Mdmp2LuzN0aBWXfbGd127rpGbhbYAaQfwmZaCmli5pNDyjvtI5"
    "w8cVLOVPTeYHWUGCw3oeCbn4fIgQoiMgR6KBppEdQCOvfMTUCWAjN/aXG2yJZADGfilfi9"
    "+Z1CtHoWWixdD+HJmvVlQ+KSydQ4LXLO2HFd8wmtS/ppOoAgpgHqAYqwF/gzIAaJG3/D7h"
    "z4TLifgy3xSwYS4hwv+8FQRTTvuNlJq9yT0wELSJ4QAau57SDhoYlaJj6m4AQCprOJTwi/"
    "D5dcs0bpChEKLl59/+KUi+DUPU4Bd908YB97tgM+oS9Lm11iRuEn8ThsR+PANbKA56beT+"
    "qvoRN3KeYdBnjOVaP9LIf0s2xUkSebFQRAJNBkn0p5eDPscDl6uIgfzhHET0jCZqnxDau3"
    "EN2zb78tgS6rpURXXMvwhuz+iCxJOLTLopwRayHalxclwL68UGLNL+X9Uj5lIFqSCWMba5"
    "gS1eRhhjwMllhzjqDFluA8umP0Rckk5mVr9eaGwVtEynR/G6f4mKjTnrzv/PYixcncD/pv"
    "o+qJTn57P7hR6eDRtSTzdQkFRIIa/eroTwji2NSgKNOS2pnaaHYy3jRUVXNa8jBqPqSZ3y"
    "YtH56DbtjsuWfC9LDsXsOwPQC5t0/uaoimbKTNx+4TwoaEuUpdPy3irUhQ0/R41QrRxTal"
    "PuJ8jRAHQvwUPGEeEvy4FpTPTx/HwObhus6aM0WWv1jyKGJvzqNy+f2B484owC6rwhoMI3"
    "NzIch7u5OEU3oOh/ThQ++uAonk+7b1ksvUWWW2c0nG/6Y+DiK3xZ34n4sfjcOvO8KmOw8W"
    "kuQSIV69mFSawoXtSKxoNdKxxC7RbuyavhXbY7WZtGlc32iqs/1JiOnAjCbrl6DPbP2ro+"
    "K0pNZyk7WseQylmlk/htaAGXphDzwStYeDpWEb3sYpt0073qaBe/RbXhHcIt3sRmEvRdvc"
    "TXxNuf1tIBBkvQZ5qyKMgodARMmu4BFNWd8JElqnHiJsLwpOROACD2IALgE+tlxWqtjZ7u"
    "Ee2/e0cZprMiI3lb26ucAzYPmFSZibzHqFzl/V+asl5jEjTEKtSDgcRxIrAyvMG6yjkVi6"
    "yeECRudtp9e/DnLmH/A7oZS50MjbwYD9P3Nd9n+3M/r9GiBI13X0UiaQQx3GkQvieEaKwu"
    "6zExq6/DfdUC67C94sUFJFb1GydDZMKbldCuZKy+UbExFNbC6qZEllpLSXTZF2bwZmW90l"
    "IttGoxeK9uTg86RUpea257OqFXbMA2MXkWmbPHYlumWS4NX46rxsWV52nMpeB3aptMa9DO"
    "6+ev7ffpyHEmxthDbLCE1nNddTuKoN7Z5psuYD80zQcc+z8DZNaAPvcAaeQm8l7DuVurR5"
    "F1loCmxLWXcqdMsaGUe01u3YuquOukxYw17WuFPgXeKoNgXW2rRr1gLP/V3VPPEJCe2Jl7"
    "BiOrZBHyjTREQLokUip/czo0Wic72PDNyy0SKJiW/7gTL6jB59Ro+OaTpNoy6JaIq0oY5n"
    "4i9U+owZsQlH5AcgXpzhKdJgAhQoDzeyiTiun4owoyATSHaqTO12dpxpo6OKnhlVhBbQdu"
    "TUlSIHJBLYDVH134KbIpnOz8qwTKyWkmYS19K22RJSKmbxOaTzKjjnBJtMDNZEfC/nt7An"
    "swmyTMKmIiyPlyuiQ2TSh+RDXr38fr8r5L7oEJ2poO717c1UEFPUxPVlhyUVbz83QvqU5e"
    "yGXthLJo9xlU5fSlxzchra/MlIInTY3HxBKw1t4cdncrIH/AbNpuRoP0IjvqmwhIT99KRH"
    "Uv00GvQVudx50Qz0jk2P0PFWADwHIwV87lCk7PlHmbmdN3Ajo7XU+9s04fXME2hbRnZlJp"
    "HsSRn1ccqez9FOvPSRxlsgEmTJ8wBqGRe61xOfBVYSui3CUE23bRRVhm4TX76EgFN0/AOU"
    "UQjMD+KomiixjwJIEP+UJS8UM6+McXtOU9IjkyO6WBjj4RmxDsQznyFW8LXLxGYtlSkomp"
    "m6js4O/E94PLk/RU0vRfVbyCrt5czl5CipgrHZ3tOXz0vhfF6A87kC52gaqQR0JHTAzFbj"
    "IDhflsL5sgDnyzzO7JltbKvTiVXsaFKqhX2ajfySk0fh7FEAt6Jzq48Dloi2oIsXUaD7OA"
    "8YfYGLpVPpuwQJkTacwHyYjr6xICsAnZRpQdfOAH1ZBuYsg58A+TI3lxR807Q4dL3wi6Z7"
    "JIfP92tU7yJw3YMzyfZb3Wej+gfsr+AwHfaq1MRwVTAvXOWnBQ6X3HxWL3xJmTbAfOglTz"
    "tk1T2+vQ5Zf2nV1HpaUmu9KVqX5CnIGPboRKTqDk2JurUrs8iVSX26ROwNJfu4QrxTchrx"
    "CojrpBF9IOZxB49r57p2FjfVG9pBxJ7MDYk/NLxyWuQRhXGdbS5RNQw6L6BZ/kRl8KGaEl"
    "HHHbbBM7CXWHU+qCogHFZvIbp78dmyO/Ig/jzC6kjDhEh2A2xPPPAvKBlo2DS0GxZpuPvF"
    "7Ov/AXXFmL0="
)
