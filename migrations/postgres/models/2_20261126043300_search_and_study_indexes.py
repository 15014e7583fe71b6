from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True

# PostgreSQL only (written by hand; the models are unchanged, so MODELS_STATE is the previous
# one). Indexes that match the SQL Tortoise emits for search and for the study queue.


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
        -- `q` search: icontains is UPPER(CAST(col AS VARCHAR)) LIKE UPPER('%...%')
        CREATE INDEX IF NOT EXISTS "idx_words_word_trgm"
            ON "words" USING gin (UPPER(CAST("word" AS VARCHAR)) gin_trgm_ops);
        CREATE INDEX IF NOT EXISTS "idx_words_definition_trgm"
            ON "words" USING gin (UPPER(CAST("definition" AS VARCHAR)) gin_trgm_ops);
        -- /study and /stats: new words oldest first, counts by state, due words by date
        CREATE INDEX IF NOT EXISTS "idx_words_user_state_created"
            ON "words" ("user_id", "state", "created_at", "id");
        CREATE INDEX IF NOT EXISTS "idx_words_user_due_id"
            ON "words" ("user_id", "due_at", "id") INCLUDE ("state");"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        DROP INDEX IF EXISTS "idx_words_user_due_id";
        DROP INDEX IF EXISTS "idx_words_user_state_created";
        DROP INDEX IF EXISTS "idx_words_definition_trgm";
        DROP INDEX IF EXISTS "idx_words_word_trgm";"""


MODELS_STATE = (
    "eJztXG1T2zgQ/isaf6IzHAMJhR53czMGQpsWkk4Syl1LxyNiJdHgyK5lFzI9/vtJ8vuLjB"
    "2SkOT8hYmlXUl+VlrtSo/5pUxNHRl0r4dGNqKTgXmPiHICfikEThH7kVu/CxRoWVEtL3Dg"
    "nSEUbE9Sc7ioqIJ31LHh0GG1I2hQxIp0RIc2thxs8t6ULkEAU+oiHfjqQKjvgntiPhBwNw"
    "PYoeDjzQBgHZjEmIEdCHR3agFzBJwJpkD0DwxzTAExmQhrkLzZ493r5pD1j8l46T25BP9w"
    "EXvzMXImyGb9ffvOijHR0SOiwaN1r40wMvQEzFjnDYhyzZlZouz6un1+IST5W9xpQ9Nwpy"
    "SStmbOxCShuOtifY/r8LoxIsiGDtJjoBPXMHwrBUXeiFmBY7soHKoeFehoBF2Dm075c+SS"
    "IbcYED3xP4d/+UOLiWlapzvQ+q2BpikZS/MhpEziFw1NwmcJJg4H6teT124EiChVeAdnH9"
    "TeTvPojYDApM7YFpUCLuVJKEIHeqoC9AjlEZxiY1YF6UhjkWgHBQVwB0itGbYRlujRwqxW"
    "g04Wz3OGhYOnKB/TpGYKV91X3Qt+LAbfyPG8LsCD9lWrP1CvPvPmp5T+MARe6qDFaxqidJ"
    "Yq3fHsYTIf6rnYsBFw0x58APwRfO12WmmrhXKDrwofE3QdU2NuToN6HJOgOChKmNmlSJ/D"
    "xjG1BRjYXx21fRdvXxv9ZPvfPCZOatZWXmcrD23EcZ/DyknNLXTWbB5DvcsCPX8GbojZ/c"
    "XynO+2tbzIsk0cqdsONFKmZnBtonHHfBC/NQ4Ojw/fNY8O3zERMdCw5LjA3u3OgAU9PGYf"
    "3efGkxyuLLoXpo3wmHxCMwFym40IkiHKAdVPrq79ZjYM3Kdg9gSl0bS04UOY5MQnFXt39s"
    "bIEW9/pvbP1POWIhC+g8P7B2jrWgJqXmM2zFRJKJutmjam6RJI4FiAw9+CjzlMaX9i9KDk"
    "JruiZrc4zeUyFfJbT4FnkRA8mLa+Cx6ww7LPCQJ0OEG6y5LKOzRicwdAogM4cpDNclGwg4"
    "jpjnmaypqwDMgTVEliu/guns9ovym8Jy7r9e5tFUzoW7g6wgoGxvdKGbDUT5V1Uf50fFnm"
    "u+b+abcg4WU48O4zwJ5NoN0i7jTjoJIRXqidQpq9wvr4K0V9r7Y7JwCOGay3hGWw5yeAvZ"
    "9+S953u+z32DTZ75ba/+cEIEhn6bUjMc0UPmoGImNnwh7fFpjhi9oTefPb1E7f8SsavOYp"
    "HXWHa6V62B1X3cKIbEMisLLpVej7cg39jJE9tSIjb5eBudFSa0V3uR9irz+lFXaIlNZc0e"
    "yaJaSL2SwiYJnXd5DmBQTzbhHpNtZ6o+i0bpgeerglly2112l33p8AA0GbMNRvSa/1pc0F"
    "vLXHnyMpGwVy82weB/sldo+Dfen2wavSpkOW1HL9KTQM6cJIqW7Rwmg2jo/CNcEfipZD/0"
    "q9vMxdE3fYwM5Miu6FYUIptFnlFL4jrr15CBd57O716WULfO61ztr9dreT3INFJS9iBdhL"
    "+3ot9TLt4vFohIdsxHPBnqtd414Gd1fu/4uj0KRmHYSudRBqQOpoYUg5n8FlbdTn/utseS"
    "88Ewc9L4vwwibqAG91AZ7EbiXiO5m56vAuiNAk2JaK7mTolg0yNmivW3B0Vx31POUa9rLB"
    "nQTv52M7GdZ1aLdeG3x9xbvoUzF+nVUN0ZhGjejzl+bBfeELL81v/GY2DNyyl+axSZV/aZ"
    "72AguAtOYhvAYPQaCew0IIrCHnIPAXKslAUL08CNl/APHiDE9BXfdQoJwjgG1BGqCCG+Cx"
    "97M0gxe0s2B2fM0NeCE3AE0hNvJPBSS87UBhMWcArwtuIn9vNsok8ExKmsGLumQgYUFKhR"
    "efQDqpgnNGcZ3PXOZEvPG2DKOCSUkRF3WpjAdRbCNds5krImJ82T2xINPM015lqrm/9/ty"
    "d8hlZZo1u1g+67eLXZwJ6+UhU5wDk/4iMDlFTn39i089ZEDJypN8h7hh00EWquZwhl4MVM"
    "Bh3UaIRID5MoC2LH98WmaKIrDKSVECDOUpSmioMikKFwYQ8LQGYBre3Pg0Zv5d7kW/1w+5"
    "zHnZyTxN5CQmEXlZBGL3SJBGDUjGLkPIYzEnSNCBeGxDS3CgxZmqU9OfV5vi5B81ySPvQH"
    "4LA+6D/XJ3lEWXlJkUJ744qmAc6Gwhzs1SODcLcG5mcWZjxgTnZzRypJNaW4g1m5ElJ3Xh"
    "rM7AjR7h1DIknFjJ2UikMhfQ63blvhKcw/20AtBxndVNaUVZDdBHZWBO53wxkI8yniO8Ps"
    "+CXMwjSWqu7mKrudxYYxEsEgeOc5IP+ZwN5Fc4X8FqJuxxKcdwXOAXjrNuoT5OkqO/XcdJ"
    "iTtMS5/T6knN2urrYvUcAkvmIEewS/N9aUlq6oodK/EO1f6frFT/FKPi+oy0tnBtbu5azG"
    "WLewzXSvdmCa36s5sS92UjalOtKDIvQDtHt8a8BOacFl81BQp0ahJ96n7KqvIldiC+uhRy"
    "f7kYLoxqakCLoipQRgo1mFkw4x+oVY9S8vTrj9vWOVypue/1vzfbbFpxzfl4RVKDimw8nC"
    "g5tAa/ZreI2AAjmeeYDXIYakr0evEFfiKbVrxkjals4Q3rUmi6fFFVQNgX30J0l8LJYD1y"
    "/nIW4Y/9bkdybRKppCNePHTAv8DAdBPDowJwORiJODfAdOdK/TsN99ll9zQdwPIGTvPCp1"
    "V+RPT0Hz48/8I="
)
