from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        CREATE TABLE IF NOT EXISTS "users" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "email" VARCHAR(320) NOT NULL UNIQUE,
    "password_hash" VARCHAR(255) NOT NULL,
    "desired_retention" REAL NOT NULL,
    "created_at" TIMESTAMP NOT NULL
) /* A learner; deleting one deletes their words and tokens. */;
CREATE TABLE IF NOT EXISTS "refresh_tokens" (
    "id" CHAR(36) NOT NULL PRIMARY KEY,
    "family" CHAR(36) NOT NULL,
    "expires_at" TIMESTAMP NOT NULL,
    "used_at" TIMESTAMP,
    "revoked_at" TIMESTAMP,
    "created_at" TIMESTAMP NOT NULL,
    "user_id" INT NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE
) /* One issued refresh token, known by its JWT id only (a dump of this table logs no one in). */;
CREATE INDEX IF NOT EXISTS "idx_refresh_tok_family_8ce7f3" ON "refresh_tokens" ("family");
CREATE TABLE IF NOT EXISTS "words" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "word" VARCHAR(100) NOT NULL,
    "word_key" VARCHAR(300) NOT NULL,
    "definition" VARCHAR(1000) NOT NULL,
    "example" VARCHAR(1000),
    "language" VARCHAR(16) NOT NULL,
    "difficulty" SMALLINT NOT NULL,
    "tags" VARCHAR(700) NOT NULL,
    "created_at" TIMESTAMP NOT NULL,
    "updated_at" TIMESTAMP NOT NULL,
    "state" VARCHAR(10) NOT NULL /* NEW: new\nLEARNING: learning\nREVIEW: review\nRELEARNING: relearning */,
    "due_at" TIMESTAMP NOT NULL,
    "stability" REAL,
    "fsrs_difficulty" REAL,
    "step" SMALLINT,
    "reps" INT NOT NULL,
    "lapses" INT NOT NULL,
    "last_reviewed_at" TIMESTAMP,
    "user_id" INT NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE,
    CONSTRAINT "uid_words_user_id_bb7d31" UNIQUE ("user_id", "word_key", "language")
) /* A word a user is learning, with its FSRS schedule. */;
CREATE INDEX IF NOT EXISTS "idx_words_user_id_ae9a0b" ON "words" ("user_id", "created_at");
CREATE INDEX IF NOT EXISTS "idx_words_user_id_07abf0" ON "words" ("user_id", "due_at");
CREATE TABLE IF NOT EXISTS "aerich" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "version" VARCHAR(255) NOT NULL,
    "app" VARCHAR(100) NOT NULL,
    "content" JSON NOT NULL
);"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        """


MODELS_STATE = (
    "eJztmm1v2kgQx7/Kyq9SKRelkCZt73QSIc6VNoEKSHPqg6zFXmAVe+161yEol+9+u+sn/F"
    "hDgBLkN1GYnbHXv1mP/+P1o2LZBjLpUR+NXUSnQ/sOEeU9eFQItBD/J3f8ECjQceJRYWBw"
    "ZMoA1/fUmHCVQ3BEmQt1xkfH0KSImwxEdRc7DNvibEqPIIAp9ZABgnAgww/BHbFnBIzmAD"
    "MKPt4OATaATcw5OIDA8CwH2GPAppgCeX5g2hMKiM1d+AHJqyNxesPW+fkxmWz8TB7BPz3E"
    "r3yC2BS5/HzffnAzJgZ6QDT86dxpY4xMI4EZG+IA0q6xuSNtNzedi0vpKa5ipOm26Vkk9n"
    "bmbGqTyN3zsHEkYsTYBBHkQoaMBejEM80gS6HJnzE3MNdD0VSN2GCgMfRMkTrlr7FHdJEx"
    "IM8k/pz8HUxtwU3Tur2hNlCHmqZkMi2mkEpJYNJtIlYJJkyAenzyjxsDkVZFnKD9odU/aJ"
    "6+kghsyiauHJS4lCcZCBn0QyX0mPIYWticL0M6jlgn7dBQgjsktWNsY5bowcF8VIMsy/OC"
    "s2DYQvlMk5EprkYQehT+sx6+ceH5vYCHnWt1MGxdfxaHtyj9aUperaEqRhrSOk9ZD/x82L"
    "yG+iU2Ogi47Qw/APETfO111XTWIr/hV0XMCXrM1niZ06CxyCQ0h6ZEmj2KjBVyvBC2hgQH"
    "d0ed3/Xn10X3/Pm3SoqTkXWWdznLuosE9xWynIzcw2LN1zE0elzoBSvwhaQ9uFl+VbtdLU"
    "9ZdggrLNthRCrVHNdLTO5ETOKPxuuTs5O3zdOTt9xFTjSynJXku9MdctEjNPv4LldPClxZ"
    "upe2i/CEfEJzCbnDZwSJjnKgBs3VTXCYFwb3KVw9oTVeli6cRU3O4qLi186vGDF59e3WoN"
    "26UBVJeAT1uxl0DS2BWozYDTtliXyzQ1bDSlsggRMJR1yFmPMi9ZxWN8xGcYsrLqhiZ9sC"
    "JoIuT+ufQF445ylbRp8CbyanCLtgZrsGBZAYfjNKs33rM46z5q60sHZULRvBEnleN7rjNe"
    "OwpAlFFsRmlmt7Ct2CfikMSLHlk95Mq79JuBZ80ExEJmzKfzYbxyUov7T6fj/aOE49Q7vB"
    "UMMfSzamDqRU3AjaFNLpMpwzgevh/bsfgQnijTdvKhDnXoXE5ViSOJ8Zb+gNzeWliMj5ZZ"
    "+Jpg0L6kZudAr9WIRvCv7x0bvttxAXvZvzKxV87qvtzqDT6ybFoxwUJm7A/tOyr7auUtxr"
    "VV+86vdL1Wc0aLFkWmzt02/ik0vkPIi//NRHJiy48wre/7+w5VAkVRO3k1RPz8N0yw+xT3"
    "g2qb8lqxz9HTIs1t9Roqrob+EMIBCaHWDqy2jO4hDMMJvKzZ7LQX8AqD5FhmeiPOm9yiFy"
    "VPe3qF+UKuMOyX0FE5KJxwkpP1KqPHZfqNbcJ7Yb/ATCVuv3ber3WbA+q8rK0H8P1eTr4y"
    "r6nXsVqkk59pQpw+HNsQzjMGYPOTcrcW6WcG5mOfM5Y4Lz5Xox6WTUHrLmK7Lioi5d1Rnc"
    "6AFajomWavzjkJVA79iGynY4R8/TJUAvxmxvSSvKdkCfVsGcbmgWIJ9mKgcej7HOp5xTow"
    "cWNM1CjZGM3N4WQ3OzWqPZODuNZIb4UaYwBtetq6tQZsRQGZzkNB/Fazb03+J6BdtZsGeV"
    "CsNZSV04y5aF+l1JMf39eleS2AF1jBWznoyss74rWc/53CHzIocynob8WqoSz8rsyiYSHw"
    "VvsbASNFuytCpd9ZZnFs2+kyu11e92uv+8j15MfCd99UtHOLjoHgufvhp7uSj0S7/qqCbb"
    "Kom2EsmWURP+W4wl7884ag/vzZd7L2ZLML+fRtjEeVqxZFMoEbXiZtCOtT8b3gwaU5dqZc"
    "q8hHZObM28AnPKkLNsCxTGrNT87BjeNbY/LnJy2p9CiqH79lrI480yfObr6sX3Hw5Fy6CM"
    "A2qYWZiUab6IWqmLyIuvv5TeZblSfzNbfzNbfzNbtGffQi7Wp0rOrn0wcli2bw9jn19t3B"
    "cDrT9n3a3t8Hvk0iX3EBdC9nADcSOfWIqbagnCgfse0t3IJwf8jOLb0yzhj4Net2BXIA5J"
    "CzqsM/AfMDF9iU//ErgCRkLGhUwPrlv/pnG3r3rnaX0mDnCepw62+TB7+h9+RcT8"
)
