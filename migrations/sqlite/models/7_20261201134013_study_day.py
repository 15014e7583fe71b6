from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        ALTER TABLE "users" ADD "new_per_day" SMALLINT NOT NULL DEFAULT 20;
        ALTER TABLE "users" ADD "timezone" VARCHAR(64) NOT NULL DEFAULT 'UTC';
        ALTER TABLE "users" ADD "day_starts_at" SMALLINT NOT NULL DEFAULT 4;
        ALTER TABLE "users" ADD "reviews_per_day" SMALLINT NOT NULL DEFAULT 200;
        CREATE INDEX "idx_reviews_user_id_b93e63" ON "reviews" ("user_id", "reviewed_at", "rating");"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        DROP INDEX IF EXISTS "idx_reviews_user_id_b93e63";
        ALTER TABLE "users" DROP COLUMN "new_per_day";
        ALTER TABLE "users" DROP COLUMN "timezone";
        ALTER TABLE "users" DROP COLUMN "day_starts_at";
        ALTER TABLE "users" DROP COLUMN "reviews_per_day";"""


MODELS_STATE = (
    "eJztXW1zo7YW/isaPmVn0p3dJE3a9M6dcRLv1m3W7thOt7dNh1WMbDPBgkqwXt/e/e9XEm"
    "DeJAzEppjhSyYW5wh4zpF0dF7E39rKNpBFX99CYmjX4G8NwxVi/yTaT4EGHSdq5Q0ufLIE"
    "4YxRiBb4RF0CZy5rnEOLItZkIDojpuOaNuakI4yAYRI04w3AngMI1jYxTsHadJfAdCmw1x"
    "i8m4wngM6WyPAs9Jr3bNgz1rWJF1U7ecSPuP8ZkY0gBUtIGdfcJmv27IC/wCmA2GBtBDEq"
    "ikQbmBN7BdwlAnOTUBe45gqJ/j8FVJ/AGtJH7HoEIwOwhzl5Ro4be5ClSV2bbFjLEuEYm0"
    "lByDRnz7+AJn4lXtTD5l8e0l17gdh9CXvdP/7Q+CMLFMKX1v78k/00sYG+IOrTeJRRcxkw"
    "gs9IULN+oKsxStlV6kI3QcZ7dJ71uYmspB6Y4t6iXXc3jmgbYPedIOQdPOkz2/JWOCJ2Nu"
    "7SxltqE7u8dYEwIuyuvHuXeFw9sGdZgRqFGuMjEJH4bxnjMdAcehZXMs7tP0DUpun6cDTV"
    "J/2prmsZBQw5YuoUNM1szJWXPSoVb7/gj/DN2duLq4vvzi8vvmMk4jG3LVdf/VtHwPiMAp"
    "7hVPsqrkMX+hRCTBGokSgz2N4uIeljbyUAHrCngniGMkAnOkjhzV4kjXeIbh7gYUOEeDSK"
    "q0OuvRuNP/bGd9fhcHvE4/6v/fGkfx0OtvQIV4hkBb/oFsILd8l+5sH/a298+2NvfHL1iv"
    "dssynJn6iGwYUzfoXLJ5JHNDCSwrixbQtBLFf2iCklgCfGdSgJhKPgAEqfA+nNaHTPe15R"
    "+pclGgbTFLgPH27645O3AnNGZLooPhQiqLczTxW13zLXp/IaRmutpM4P+x8ZyGj9iO/7vf"
    "FwMHx/DZgeEczgF/o/4ARM/U1OM+5HVASFdFVGxds3BYbF2zfKccEvJaUVLA8Zcd0xlPl6"
    "KB8ZEVdKTkbA9jr8pzkT1T6GyXTwoT+Z9j78khgrd71pn185E62bVOvJZUoc207Ax8H0R8"
    "B/gt9Hw76A06bugog7RnTT3zX+TNBzbR3bax0acUzC5rApPRifTDZWN1kJv7NsqFjlE1wp"
    "Cc85WwGpBvPYEQj1bvRwc98Hv4z7t4PJYDRMSlFcTM55437vPjWM5pRQ3TDnc3PGHrsc2h"
    "LeDvMCmFMXOVmgJytoWUr7NeTZbcE2H97Ahj0/u7rcmq/8R57pNPnQu7/PrtkEObTELiAk"
    "r4Ripen+TaP3ARGQFnQoKgNlxNCBmQWTurpvRCGjgpUi49+DvdKwaaBN5gr3Y+ilHBIxjv"
    "oGUOMdExGi3LdUDtEYR4dogCh3ns2fpZ6e0HmXMvdsgswF/hltMvvdFKiBG/Zj0M2Rgfs1"
    "1J6wNZofCVxvvY1xpWLvzt4Y+WbdbW9y27vra5lZYA+QPgTdtBTS2Mwnh5Qr7ROcPXOnnK"
    "7QXn91lBgsNwHju5/HyIIKR2QA9Fh00iKoBXT2mR2DLAFm9tLqbJVugRguxCvxe/M7BWgN"
    "DLRybBfh2YbpsiYJyaQoTvOCM2ZEqz+jTcE4TQ8QxCRAXUARdv14BsQgduNv2J39mAmPc7"
    "Al3mEgIe7jZT8YqohmAzd76ZVHcnpgBckzImC9NC0kIjRhz8TDFJxAwGQ28wjh9+GcG9Yp"
    "XSNCwcWb71+dchacuMcp4KGbR+xh17TAJ/TFMdklZhR+Eo/DdjQW3CADuHbi/aTxGjqzHT"
    "HvMMAzoZouzlJnnGUriqyzWeEACBmaHFMpDm/KO1zMPZznH844iJ+RxJulxjcgbyG6Z99+"
    "WwBdRqVEV1xL+Q3Z/RFxSDC0i6KcYmsh2pcXBcC+vFBizS9l41IeZSAakgljl9cwwdo5D1"
    "POQ3+J1ZcIGmwJzqI7RV+UnsQsbyVtbhi8eU6Z/m/ThD8mVNqTD73fXiV8Mvej4fuQPKbk"
    "t/ejG5UMnmxDMl8XEEDI2KFfHv0ZQRybCi7KJGcXTG20dzLaNJQVc5KzHjHXaea3Scr1+6"
    "AbNnse2GFar3evYdjW4Nw7pO9qjOZspC2n9jPCmsRzlbh+mue3Ij6l7nLSEtnFJqUe4v4a"
    "wQ4E+yl4xjwl+GkjXD4/fZwCk6frWhvuKTK8lcOziN0lz8rl9weWvaAA24yEdRhk5mZSkA"
    "92J4lP6SU+pIeHwV0JJ5LnmcZrzlNlldntS9L+Nfewn7kt7sT/XPxbq3/dETbdub+QxJcI"
    "8er5TqU5XJmWxIpWIx1x7BPtxq7pO7E9VpupM42rG01Vtj8xti4xo8nyJegzW/+qiDjJ2U"
    "m5yVLu/BhKMTM9hsaIGXqBBh6J2IPB0rANb+OE26Ydb9PAPfotr0hukW52w7SXvG3uNr+m"
    "2P7WZ/CrXv26VZFGwVMgwmJX8ITmTHf8gta5iwjbi4ITkbjAkxiATYCHDZu1Kna2B7jH7j"
    "1tVOYaz8hNVK9uL/AKWOkFf3lhys/fRpDMgvJlpjhdiWtX4lpgqtOCOtWSPonjqHMNhkZF"
    "iUTcTc4o0Hrve4PhtV9W/4h/FEJZCom8H43Y/wvbZv/3e5P/XAME6aaKXIrkeqgzPTJ5Hi"
    "+oYth/AUNDLYSm29JFN8rbNUwq6B1Cls6GCSG3S8BcaJmSZCISjvVVmUKqFFcXiFNU5uu+"
    "ZVd1iUj30eiFoj1l+rxuVSm53SWvaoEd88DYR/LattRdiW6ROnk1vl3ptqx0O6p2rwK7lL"
    "vDvQjunnr+333ihxLszghtlhGaLHyuJnBVH10Ep8mS980z4bF7mYW37aIz8Ooz8BRyK2Df"
    "qcTVmXehhabAtpB1p0K3qJFxRGvdnq278qjLmDvYixp3CrwLnOamwLoz7Zq1wPN4V7lgfY"
    "yjC9ZLvGJd+kN35kwTEc1JKAmD3i9MKAmP/j4ycIsmlMQmvt1nznTH+HTH+HRpT6dJ1CVJ"
    "T6E01ClP/IUKH0MjNuGI/ADEizM8RaWMjwLlGUkmESf6U5GJ5BcLyQ6eqdzPnotxuqyiF2"
    "YVoRU0LbnrSlEmEjLsx1H1z4KbcDKdnxXxMjEqpZtJXEvaZg6kVMziS0iXZXDOMDbZMVgR"
    "8YMc8cKezCTI0AmbirA8Xy7PHSLjrtMf8ub194ddIQ/lDumKGdRa395iBjFFzWxPdp5S/v"
    "Zzy9QdxJze0At7Sec5rtLpS4lrhq+DNnt4kkgd1rcf2UpCm/t9mgxvjZ+p2bYc7XdqxGcX"
    "HEjYT1d6atVPk9FQUe6dZU1Bb5n0CANvOcBzMBLAZ85NSh+RlJrbeQfpc5P48vlftlErY4"
    "fGeWosGniY3mq12KD7P/jOgBudupC48ir8/Ohyhrm+KfzisFP4PsLLGK11BxGdoVQW2BRr"
    "fbCeHXhp3M+RgqJsriq2EvY68W0owJmAgtqzmAw1vPB48JaFGVKKmj7GqDpO6cOT2olXd9"
    "78DoiEm/plALUsCnXQ4/gFVpJAR4ihOtCxFVSRQIf4LDEEPDjCvw4cJh/+IM4RC6uuKYAE"
    "8e8M80Yx88piHS/pSnqefRioE26Q4ABvC+KFxxDL+RRxzE2WqNYW3cxtq6vL/kciKPJItn"
    "pDFdK30J9/kAPx46OkDMZ6e4/GPy+E83kOzucKnMNppBTQIVON7oGafAOFcL7MwfkyizN7"
    "ZhOb6oMcVHGpOFcLdZqN/IKTR+7skQO3QrnVZ7VLWFug4nnBp0Mc1o6+wJVjlfI5xljacD"
    "x+PYq+tSBLAB3naYFqp4C+LAJzOnYaA/kyM5fkfHB6h1s373PTB3SOnR/WqN6H79GFC8n2"
    "OycgEdDXqK+gHoW9KjQxXOXMC1fZaYHDJTef1QtfnKcNMNe95HWpMGqNb28qjOcYFaWe5O"
    "yk3hSphxjFxC7zsIdn0ZVPJZGIu0siyUsioR51EHtDyT4uF+8EX4d4CcS7cr3utOLjLtvp"
    "gutdsLip0dAeIuZsqUniocGV07yIKIxodoVE1TB0FVnNiicq077VLhF1xncbIgMHqRLig6"
    "oEwgF5C9E9SMyW3ZGXT2URVud4x1jSG2Bz5oL/gYIp3k1Du44c7xKZhvtfzL7+Hxn7YuQ="
)
