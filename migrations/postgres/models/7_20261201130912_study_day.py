from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        ALTER TABLE "users" ADD "new_per_day" SMALLINT NOT NULL DEFAULT 20;
        ALTER TABLE "users" ADD "timezone" VARCHAR(64) NOT NULL DEFAULT 'UTC';
        ALTER TABLE "users" ADD "day_starts_at" SMALLINT NOT NULL DEFAULT 4;
        ALTER TABLE "users" ADD "reviews_per_day" SMALLINT NOT NULL DEFAULT 200;
        CREATE INDEX IF NOT EXISTS "idx_reviews_user_id_14b976" ON "reviews" ("user_id", "reviewed_at");"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        DROP INDEX IF EXISTS "idx_reviews_user_id_14b976";
        ALTER TABLE "users" DROP COLUMN "new_per_day";
        ALTER TABLE "users" DROP COLUMN "timezone";
        ALTER TABLE "users" DROP COLUMN "day_starts_at";
        ALTER TABLE "users" DROP COLUMN "reviews_per_day";"""


MODELS_STATE = (
    "eJztXW1v4zYS/iuEP6VALkicbNJLDwc4ibPrNrEL22l6bQqVsWhbiEypolSvr93/XpISrV"
    "fKkmJ7ZYFfgpiaoaRnhsPhzJD6q7WwdGSSk1vo6K1r8FcLwwWi/8Taj0EL2nbYyhpc+Gpy"
    "wgml4C3wlbgOnLi0cQpNgmiTjsjEMWzXsDAjHWAEdMNBE9YArCmAYGk5+jFYGu4cGC4B1h"
    "KD+9FwBMhkjnTPRCesZ92a0K4NPKvayQt+wd0/kbPipGAOCeWaWs6SPjtgL3AMINZpm4Mo"
    "FUG8DUwdawHcOQJTwyEucI0F4v3/HlD9DpaQvGDXczDSAX2Yozdku5EHmRvEtZwVbZkjHG"
    "EzCBBMU/r8M2jgb/iLetj4w0Oaa80Qva9DX/fXX1vskTkK4qVbv/1GfxpYR58R8Wk8QqmZ"
    "DCjBn4hT036g26KUWVeJC90YGevRftOmBjLjemDwe/N2zV3ZvK2H3XtOyDp41SaW6S1wSG"
    "yv3LmF19QGdlnrDGHk0Luy7l3HY+qBPdMM1EhojI9ASOK/ZYRHR1PomUzJGLf/AGFbS9P6"
    "g7E26o41rZVSQMERUaegaWJhprz0UQl/+xl7hH+1zy6uLr49v7z4lpLwx1y3XH3xbx0C4z"
    "NyePrj1hd+HbrQp+BiCkENRZnC9nYOnS72FhzgHn0qiCcoBXSsgwTe9EWSeAt08wAXDSHi"
    "4SiuDnnrfjB87gzvrsVwe8HD7k/d4ah7LQZbcoRLRLKAnzUT4Zk7pz/z4P+pM7z91BkeXX"
    "3DeraoSfINVT+40GZXmHxCeYQDIy6MG8syEcTZyh4yJQTwSrl2JQExCnag9DmQ3gwGD6zn"
    "BSF/mLyhN06A+/R40x0enXHMKZHhouhQCKFeW54qar9m3p/KtzBatkrqfL/7TEFGyxf80O"
    "0M+73+x2tA9cjBFH6u/z1GQNXfYDTDbkjlIEFXZVScnRYYFmen0nHBLsWlFUwPKXHdUZTZ"
    "fJg9MkKuhJz0gO1E/FMfQ7WNYTLuPXZH487jj7GxctcZd9mVNm9dJVqPLhPiWHcCnnvjT4"
    "D9BL8M+l0Op0XcmcPvGNKNf2mxZ4Kea2nYWmpQj2IimkVTcjC+GnSsrtISvjctKJnlY1wJ"
    "CU8ZWwGpBnbsAIR6N3i6eeiCH4fd296oN+jHpcgvxm3esNt5SAyjKXGIphvTqTGhj10O7Q"
    "xehXkBzImL7DTQowU0Tan/Kng2e7D1hzfwYc/bV5dr95X9yHOdRo+dh4f0nO0gm5RYBQjy"
    "SihWMventV4HhECa0CaoDJQhgwIzDSZxNd+JQnoFLyWLfwv+Ss3MQJPcFRbH0EoFJCIc+x"
    "tAtQ9MhIiy2FI5RCMcCtEAURY8m75lRnpE8C7h7lkOMmb4B7RKrXcToAZh2OegmwMD94vQ"
    "HtEa2kcHLtfRxqhS0Xenb4x8t+62M7rt3HVbKSuwBUifgm4aCmnE8mVDypT2FU7eWFBOk2"
    "ivPztmOCw3AeP9D0NkQkkgMgB6yDtpENQcOqttRSCLgZm+tGgvki0Qwxl/JXZvdqc1WlM6"
    "Y87H1hvCrYyETOz6cV5ixvEpNZeRlsjQGIR4SAcBO+Dsx+ANs7TK64onNr5/HgODpTzMFT"
    "iCQPcWNsvEuHOW2WD3B6Y1IwBblIR2GGQ3Ummcnd0pI4+SSJmUync8PfXuSiQ8PM/QTxhP"
    "FZ3fnPdo/WfqYT/7xe/E/lz8t2SMchv+Iw8nnvsOYdTV46+enwCZwoVhZsRB5EiHHNtEO2"
    "1h9plmeg+2IZbos23QqxVWQHFOFaut++Knyio3wqYWt3WWL/W16PxXRcRxTiXlOkt54iCG"
    "ewUpxzkbaKypHkN9QB094WYfhtiDwaICV18zzKJiAjuOCex2ycsDBJmLXRE6yFvmrmMUxd"
    "a3PoNfOejX/vGCPVboJwoGwSuaUt3xiwKnLnLoWhQcuRbltU24ApYDPKxbtFWyst3BPTav"
    "acNSwWhWI1YBuL7AqggzLwiOSVD4SdVFFQeq4sAilVJBhV/JSMRhVAhSsIKirCoSCblrXa"
    "vZ+djp9a/9guQX/IkLZc4l8nEwoP/PLIv+3+2M/ncNECSrKnL5UEAuH6Ry+ZCSS/X87/ZT"
    "vzX1C+ruQRddHq9nrkxBbxBypjWMCblZAmZCSxVzOjxVoy3KlKAkuBpUGrW1LDovS9Z8f6"
    "7qFJHso9YTRXMKnFnFn1Rym4sF5QI75IGxjZrBdZGwFN0iFcZyfFXRa1bRa1gnXAX2TG6F"
    "exHcPbn937xXQgq2ckLr5YTGS0arCVzWh8rb1FnyvnvG43Tv8/DWXSgHb38OnkRuBfw7mb"
    "iUeyc8NAm2hbw7GbpFnYwDmuu27N2VRz2LWcFe1LmT4F1gH6wEa+Xa1WuCZ/mucin6CIdK"
    "0WdExVTRg9qtU0dEc8pIRNL7nWUk4tCkAwO3aBlJxPBt3q2jNkCpDVCq2Ok4jnpGqZOQhr"
    "zQib1QwTKnjr9YR853gL84xZPvj/FRIKwOyXD4WWiE1x/5W4TSpUzv6GfLW3BUVdE7q4rQ"
    "AhpmduhKsjlEMGwnUPV1wY0Fmc7bRaJMlEoaZuLX4r6ZDQnhVnwOybwMzinGOgcGKyLe/l"
    "Ck7IdSSRHn1xLLckQMB+maQ00Rzq6XywuHZHHvMx5yevLv3c6QuwqHqC0Mcq1v7hYGbqIm"
    "loczpJ6//FwzqSNskgt67i9prMY103xJcU3xKWjTZ1bx0mFtfTxxHNrckz1TvHs84HPdcr"
    "AnfPID62zo0J9usGKJY//9aNCXbPJOsyagNw1ygIm3HOAZGDHghc9z9Nj5OekO3T4MbpK2"
    "nXVwk7QrdPr8P12olfFDozx73DTwNL5t7cUHvbwo4IJeXkg9UHYp4YDClUZc6LjZe+/zs8"
    "sp5v2Z8IvdmvBtpJcxWmo2cjSKUllgE6z7g7W946lxOyc58s1yVbHNYN8nvjUFOJVQKHK0"
    "kswvKXGwUsPSDAlFTR5eVB2n5JFJzcRLndS1ASIepn4fQA3LQu30IDOOVUaiQ2AoT3SsBV"
    "Uk0cE/6AIBS46w76qI4sPv+OlhYq81AdBB7AstrJFb3qxcx3u6yvxyi0jU8TDIG+LzpQnx"
    "zKOI5XzEJRImi+3R5t1MLVPty/4qGZTsTLZ8QSXoGxjPPzstVqebV6ibyqBER0kZjAVPA3"
    "E+L4TzeQ7O5xKchRkpBbRg2mN4YE+xgUI4X+bgfJnGmT6zgQ35QQ6yvFSUq4E6TUd+QeOR"
    "az1y4JYo9xh9luYCU6wNUPG85FP353F+0HGde3oY9D8K8mQkMnkOJVzYZqmYY4SlEuA1C/"
    "PuR9HXHmQJoKM8DVDtBNCXRWBO5k4jIF+mbEnOp3o2hHXzPtSzw+DY+W6d6m3EHl04y1h+"
    "5yQkAvo96ivYj8JeFTIMVzl24SptFhhc2e6zfOKL8jQB5n1PeaoURq7xzS2F8Wy9otTjnE"
    "rqdZG6wCgi9qwIuziLrnwpSYa4VRFJ7mdiPWIj+oYZ67hcvGN8CvESiKvteuqM4sPetqOS"
    "6ypZXNdsaAc5xmTeysiHBleO8zKiMKTZlBKVw6B2ZNUrnygt+5aHROQV303IDOxklxAbVC"
    "UQDsgbiO5Ocrb0jmz7VBpheY13hCW5ADYmLvgbFCzxrhva+6jxLlFpuP3J7Ms/5StWvg=="
)
