from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        ALTER TABLE "users" ADD "new_per_day" SMALLINT NOT NULL DEFAULT 20;
        ALTER TABLE "users" ADD "day_starts_at" SMALLINT NOT NULL DEFAULT 4;
        ALTER TABLE "users" ADD "reviews_per_day" SMALLINT NOT NULL DEFAULT 200;
        ALTER TABLE "users" ADD "timezone" VARCHAR(64) NOT NULL DEFAULT 'UTC';
        CREATE INDEX IF NOT EXISTS "idx_reviews_user_id_b93e63" ON "reviews" ("user_id", "reviewed_at", "rating");"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        DROP INDEX IF EXISTS "idx_reviews_user_id_b93e63";
        ALTER TABLE "users" DROP COLUMN "new_per_day";
        ALTER TABLE "users" DROP COLUMN "day_starts_at";
        ALTER TABLE "users" DROP COLUMN "reviews_per_day";
        ALTER TABLE "users" DROP COLUMN "timezone";"""


MODELS_STATE = (
    "eJztXW1v4zYS/iuEP6VALkicbNJLDwc4ibLrNrEL22l6bQqVsWhbiEypolSvr93/XpJ6f6"
    "EsKbZXFvgliKkZSnpmOBzODKm/OktTQwY5uYW21rkGf3UwXCL6T6L9GHSgZUWtrMGBrwYn"
    "nFIK3gJfiWPDqUMbZ9AgiDZpiExt3XJ0EzPSIUZA0200ZQ3AnAEIVqatHYOV7iyA7hBgrj"
    "C4H4/GgEwXSHMNdMJ61swp7VrH87qdvOAXrPyJ7DUnBQtIKNfMtFf02QF7gWMAsUbbbESp"
    "COJtYGabS+AsEJjpNnGAoy8R7/93n+p3sILkBTuujZEG6MMcvSHLiT3IQieOaa9pywLhGJ"
    "tOQMA0o88/hzr+hr+oi/U/XKQ65hzR+9r0dX/9tcMemaMQvHTnt9/oTx1r6DMiHo1LKDWT"
    "ASX4E3Fq2g90OpQy7ypxoJMgYz1ab+pMR0ZSD3R+b96uOmuLt/Wxc88JWQev6tQ03CWOiK"
    "21szBxSK1jh7XOEUY2vSvr3rFdph7YNQxfjQKN8RCISLy3jPFoaAZdgykZ4/YeIGrrqOpg"
    "OFHHykRVOxkFDDhi6uQ3TU3MlJc+KuFvP2eP8K/u2cXVxbfnlxffUhL+mGHL1Rfv1hEwHi"
    "OHZzDpfOHXoQM9Ci6mCNRIlBlsbxfQVrC75AD36VNBPEUZoBMdpPCmL5LGO0C3CPCgIUI8"
    "GsX1Ie/cD0fPvdHddTDcXvBI+UkZjZXrYLClR7hAJEv4WTUQnjsL+rMI/p96o9tPvdHR1T"
    "esZ5OaJM9QDfwLXXaFySeSRzQwksK4MU0DQZyv7BFTSgCvlGtXEghGwQ6UvgDSm+HwgfW8"
    "JOQPgzf0Jylwnx5vlNHRGcecEukOig+FCOrQ8tRR+5B5fyrfwWjVqajzA+WZgoxWL/hB6Y"
    "0G/cHHa0D1yMYUfq7/fUZA1V9nNCMlorJRQFdnVJydlhgWZ6fCccEuJaXlTw8Zcd1RlNl8"
    "mD8yIq6UnDSf7ST4pzmGahvDZNJ/VMaT3uOPibFy15so7EqXt65TrUeXKXGEnYDn/uQTYD"
    "/BL8OBwuE0iTO3+R0juskvHfZM0HVMFZsrFWpxTILmoCk9GF91OlbXWQnfGyYUzPIJrpSE"
    "Z4ythFR9O3YAQr0bPt08KODHkXLbH/eHg6QU+cWkzRspvYfUMJoRm6iaPpvpU/rY1dDO4Z"
    "WYl8CcOMjKAj1eQsMQ+q8Bz2YPtvnw+j7seffqMnRf2Y8i12n82Ht4yM7ZNrJIhVVAQF4L"
    "xVrm/rTR64AISANaBFWBMmKQYGbBJI7qOVFIq+Gl5PFvwV9pmBlok7vC4hhqpYBEjGN/A6"
    "jxgYkIURZbqoZojEMi6iPKgmezt9xITxC8S7l7po30Of4BrTPr3RSofhj22e/mwMD9EmhP"
    "0BrZRxuuwmhjXKnou9M3Rp5bd9sb3/bulE7GCmwB0ie/m5ZCGrN8+ZAypX2F0zcWlFMF2u"
    "vNjjkOy43PeP/DCBlQEIj0gR7xTloENYfO7JoxyBJgZi8tu8t0C8Rwzl+J3ZvdKURrRmfM"
    "xcR8Q7iTk5BJXD8uSszYHqXqMNIKGRqdEBdpwGcHnP0YvGGWVnld88TG988ToLOUh7EGRx"
    "Bo7tJimRhnwTIb7P7AMOcEYJOS0A797EYmjbOzO+XkUVIpk0r5jqen/l2FhIfr6toJ46mj"
    "85vzHp3/zFzsZb/4ndifi/9WjFFuw3/k4cRzzyGMu3r81YsTIDO41I2cOIgY6Yhjm2hnLc"
    "w+00zvwTbCEn22dHq1xgooySljtU1f/NRZ5cbY5OK2yfKlvhad/+qIOMkppdxkKU9txHCv"
    "IeUkZwuNNdVjqA2poxe42Ychdn+wyMDV1wyzyJjAjmMCu13y8gBB7mI3CB0ULXPDGEW59a"
    "3H4FUOerV/vGCPFfoFBYPgFc2o7nhFgTMH2XQtCo4ck/JaBlwD0wYu1kzaKljZ7uAem9e0"
    "UalgPKuRqAAML7AqwtwL3vRClZ+9DSeZ+iWgVHFkmaAsEyxTM+XX+lWMSRxGraA/NGpKJO"
    "JudNVm72OvP7j2SpNf8CculAWXyMfhkP4/N036v9Ib/+8aIEjWdeTyoYRcPgjl8iEjl/qZ"
    "4O0ngRvqITTdly67UA7nsFxBbxByrjVMCLldAmZCy5R12jxpoy6rFKOkuFpUJLW1fDovUF"
    "Y9z67uFJHuo9ETRXtKnVntn1Bym8sGxQI75IGxjerBsFxYiG6ZWmMxvrL8Na/8NaoYrgN7"
    "LrfEvQzurtj+b941IQRbOqHNckKTxaP1BC7qQ2Zwmix5zz3jEbv3eXhhF9LB25+DJ5BbCf"
    "9OJC7p3gUemgDbUt6dCN2yTsYBzXVb9u6qo57HLGEv69wJ8C6xI1aAtXTtmjXBs3xXtWR9"
    "jEMm63OiYrL8Qe7baSKiBQUlQdL7nQUlwfFJBwZu2YKSmOHbvG9HboWSW6Fk2dNxEvWcoq"
    "dAGuKSJ/ZCJQueet5iHdnfAf7iFE++U8ZDgbCKJN3mp6IRXonkbRbKFjW9o58tb8aRVUXv"
    "rCpCS6gb+aErwTaRgGE7gaqvC24iyHTeLRNlolTCMBO/lvTNLEgIt+ILSBZVcM4wNjkwWB"
    "Px7ocyZT+USog4v5ZaliOi20hTbWqKcH69XFE4JI97n/GQ05N/73aG3FU4RG5mEGt9ezcz"
    "cBM1NV2cI/Xi5WfIJA+zSS/oub+kshrXXPMlxDXDJ6HNnl7FS4fV8KDiJLSFZ3xmePd41G"
    "fYcrBnffKj6yxo05+Ov2JJYv/9eDgQbPfOsqagN3RygIm3AuAZGAngA5/n6LH3c9odun0Y"
    "3qRtO+vgJm1X6PT5f7pQq+KHxnn2uGngaXLb2YsPenlRwgW9vBB6oOxSygGFa5U40Hbyd+"
    "EXZ5czzPsz4Re7NeHbSC9jtFItZKsUparAplj3B2t3x1Pjds505Nvm6mKbw75PfBsKcCah"
    "UOaQJZFfUuGIpZalGVKKmj7GqD5O6cOT2omXPLNrA0Q8TP0+gFqWhdrpkWYcq5xER4ChON"
    "ERCqpMooN/2gUClhxhX1gJig+/4+eIBbuuCYA2Yt9qYY3c8ublOt7TVe43XIJEHQ+DvCE+"
    "XxoQz12KWMHnXGJhssRubd7NzDTkvuyvkkHJz2SLF1QBfQvj+Wen5ep0iwp1MxmU+Cipgn"
    "HA00Kcz0vhfF6A87kA58CMVAI6YNpjeGBPsYFSOF8W4HyZxZk+s4518UEOorxUnKuFOk1H"
    "fknjUWg9CuAWKPcEfRbmAjOsLVDxouST8vOkOOgY5p4ehoOPAXk6Epk+kRIuLaNSzDHGUg"
    "vwhoV596PooQdZAeg4TwtUOwX0ZRmY07nTGMiXGVtS8NGeDWHdok/27DA4dr5bp3obsUcH"
    "znOW3wUJCZ9+j/oK9qOwV6UMw1WBXbjKmgUGV777LJ744jxtgHnfU54shRFrfHtLYVxLqy"
    "n1JKeUelOkHmAUE3tehD04i656KUmOuGURSeEHY11iIfqGOeu4QrwTfBLxCojL7XrytOLD"
    "3rYjk+syWdzUbGgP2fp00cnJh/pXjosyojCi2ZQSFcMgd2Q1K58oLPsWh0TEFd9tyAzsZJ"
    "cQG1QVEPbJW4juTnK29I5s+1QWYXGNd4wlvQDWpw74G5Qs8W4a2vuo8a5Qabj9yezLP4kD"
    "WdM="
)
