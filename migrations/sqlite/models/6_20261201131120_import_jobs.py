from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        CREATE TABLE IF NOT EXISTS "import_jobs" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "status" VARCHAR(7) NOT NULL /* QUEUED: queued\nRUNNING: running\nDONE: done\nFAILED: failed */,
    "filename" VARCHAR(255) NOT NULL /* The name the client gave the file (shown, never used as a path). */,
    "kind" VARCHAR(5) NOT NULL /* "anki" (a package) or "table" (CSV/TSV): what the file was recognised as. */,
    "done" INT NOT NULL /* Notes (or rows) handled so far, of `total` (0 until the file has been read). */,
    "total" INT NOT NULL,
    "result" JSON /* What the import did, once it is done. */,
    "error" VARCHAR(1000) /* Why it failed. */,
    "created_at" TIMESTAMP NOT NULL,
    "finished_at" TIMESTAMP,
    "heartbeat_at" TIMESTAMP NOT NULL /* Written every few seconds by the process running the job: a queued or running job */,
    "user_id" INT NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE
) /* One file imported in the background (POST /imports), with its progress and outcome. */;
CREATE INDEX IF NOT EXISTS "idx_import_jobs_user_id_e89314" ON "import_jobs" ("user_id", "id");
CREATE INDEX IF NOT EXISTS "idx_import_jobs_status_5f42af" ON "import_jobs" ("status", "heartbeat_at");"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        DROP TABLE IF EXISTS "import_jobs";"""


MODELS_STATE = (
    "eJztXW1z2zYS/isYfrJnfKljp3bPvbkZ2VZStY6Uk+S416qjQCIosaYAlQSjaHr577cASf"
    "EVNElLKq3ySyKDuyD5LLBY7C6Wf2oLphPLeXWDbV27Qn9qFC8I/Ii1nyANL5dhq2jgeGJJ"
    "wilQyBY8cbiNpxwaDWw5BJp04kxtc8lNRgVpjxKkmzaZigbEDITRitn6CVqZfI5M7iC2ou"
    "jtoD9AznROdNcir0TPOptC1yadVe1kREe0/ZnYa0mK5tgBLoPZK3h2JF7gBGGqQ5tNgMoh"
    "sg0ZNlsgPifIMG2HI24uiOz/k0/1Ca2wM6LctSnRETzM0SNZ8siDzE2HM3sNLXNCI2ymgw"
    "ImA55/hk16LF/UpeYfLhlzNiNwXxte99dfNfHIEoXgpbXffoM/TaqTL8TxaFwHqIUMgOAz"
    "kdTQD+YaUGZddTjmMTLR4/JxbJjEio8DU95bto/5einbOpS/lYSig8l4yix3QUPi5ZrPGd"
    "1Qm5SL1hmhxIa7iu657YrhQV3L8odRMGI8BEIS7y0jPDoxsGuJQSa4vQcI27TxuNsbjgft"
    "4XispQZgwBEZTn7TlFExeOFRHfn2M/EI/zh7/ebyzXfnF2++AxL5mJuWy6/erUNgPEYJT3"
    "eofZXXMccehRRTCGooyhS2N3Nst6m7kAB34KkwnZIU0LEOEnjDiyTxDtDNAzxoCBEPZ3F1"
    "yLW3vf5Dq397FUy3Ee23P7b7g/ZVMNmSM1whkgX+MrYInfE5/JkH/8dW/+aHVv/o8lj0zE"
    "AleYqq6184E1eEfEJ5hBMjLoxrxiyCafZgD5kSApgA164kEMyCHQz6HEive7070fPCcf6w"
    "ZENnmAD3/v11u3/0WmIORCYn0akQQr3RPFWG/YZ5f0Neo2SllRzz3fYDgExWI3rXbvW7ne"
    "67KwTjyKYAvxz/HUEAw98UNP12SGWTgK7KrHh9WmBavD5VzgtxKS4tf3lIiesWUBbrYfbM"
    "CLkSctJ9tlfBj/ooqm1Mk2HnfXswbL3/EJsrt61hW1w5k63rROvRRUIcm07QQ2f4AxJ/ol"
    "963baEkzl8Zss7hnTDXzTxTNjlbEzZaoz1KCZBc9CUnIwTE+bqOi3htxbDilU+xpWQsCHY"
    "CkjV12MvQKi3vfvruzb60G/fdAadXjcuRXkxrvP67dZdYhoZju2MddMwzCk8djm0M3gbzA"
    "tg7nCyTAM9WGDLUtqvAc/TFmz94fVt2POzy4uN+Sr+yDOdBu9bd3fpNdsmS6fELiAgr4Ri"
    "JXV/Wut9QAikhZcOKQNlyNCAmQbT4WPPiCJ6BSsli38L9krN1MAhmSvCjzEu5ZCIcOxvAt"
    "XeMREiKnxL5RCNcDSI+ogK55nxmOnpCZx3CXOP2cSc0Z/IOrXfTYDqu2Ef/G5eGLhfg9ET"
    "tIb60carjbcxOqjg3eGNiWfW3bQGN63btpbSAluA9N7v5kAhjWi+bEjFoJ3g6aNwyo0Vo9"
    "dbHTMMlmuf8e1PfWJhhSPSB7ovOzkgqCV07IxFIIuBmb60OFskWzDFM/lK4t7iTj5ancWS"
    "2fxHNtEyojHhxZO8kIwpyca/s0mJwIxhWgR5nERHJpWRD/FOM5u5VEdHH3qDIfrGo3COI2"
    "GOpc3EKu/IGApz+ZQtFHGbLd9DhHU+BBcs8zNx0JzYBMEYg/+hc0yDmwD/VFBBG0e2Sx3Z"
    "CgidIId5rZjK8NAjcDJ7RGEXY5lTDM3OitiO8F/Dk6jCNMqIDExBGYMRrktXimNOsM0nBP"
    "Mm8LL3wEsoharuZzdrN7ZL/zOQuiSQeGEX9H/u2/ft2yvkcY9o/77re5hd6rmhb8FIv0I6"
    "o2RE37Y6d4LawDBB9RoEZISikL8zJaVwlEV4ah0SG4LmEQ8qVdDUMgnlaIY/Ez/WDCryyJ"
    "mzFT1BVETIEKgSHcmQ9RIU23FatW6jw1zpnn37bQH5ApVSwvJaXMaPAGsZ+Qb0tZbtSMP0"
    "0Rxp6EiAO32ERf4YlhM08lZnceFm8PGb4eDj8RVaiWVnI6MVSMQmUzajpieftKC33nuu1I"
    "vIXC3xlLyFqimxpAXktXV8aV3GweI4AvxttnKOEZgbOqhPYVAY2D4RuSmfOOPY+oSOTpFL"
    "uWmF8hA5KBNCKAgF6xlzetud79iRIB+lhHQ39LUV71/mkwFrVjxfCssfB72uyuEecCT9l+"
    "aUo/+BaezUJ4ChPQR6yTPzkW7qMJzB3gLzWqRGiYmfng+FuYr7PwWgMddnoLyO3rd+Tuq1"
    "m7veddKnKTq4TkiP2DbLcE+ol7UNQ6V1bW8yWwucPfswSzjJy0/kKZwWy1Q4zctVOE1lK0"
    "xB3fFKsYA45wFmLWhiJehRa+2PmRcSFvCHd25UwDDBpJlXEnuCtYn+1Dn6E/OblBR0kvfl"
    "zHDtwTY5B1OOyPxlg6yQA2Y81cHCW8dcW/7OPnBsXcH2ztv9ix1CcPF3z3cY197bvsOIru"
    "bMATM0QB05nC2XQDchFqMz+MGZ2H1GnXK6mb10HNIQbgKYOw63NbGhHceGdhn66BMD5tp8"
    "yB4J1TKiH7HrJ3kBENujHHNBWiIGYjqO0GY+O5LsJ+iRihMlk7UMRPz4MESmOO1hrYUXRn"
    "cXS7EX53NxqEPcH1ls5iDKgAQ6pBlb+53e6enYRKmIw/1957ZEyMF1Tf2V4Kkye56OPGj/"
    "MlzqHfyRdxL/vPl3Sd/4NownuT8595aS6CIhXz0/BGHghWllpICqkQ45tol2WlftM9DzHG"
    "wjm+0vSxOuVjAI45wvxxz8W1r+Il5RQcYRtmZnV2f52uQzrH9VRBznbKRcZyk33jmlmA/Y"
    "O9dseZstb7PlVW95ZW5k5mY3yJrM2+Zu0jOL7W89Bq9oglf2QCbYCX9eUCsBTYgBY8erh2"
    "BwIpLe0BFnSOTD4bXw9LlUZ9Cq2Nnu4B5F8u2CROvogY5Y8YPNBVFAQVyY+qUtRIZek4XX"
    "lD8okIvn1zAo6XB4GTUQACz/2HkViYTctU7Par1rdbpXXsmVEf1BCmUuJfKu14PfM8bgd7"
    "s1+O8VIthZV5HLltOmnnHCbfuH22q6/NfdUC66C94sUJmCfkLImdowJuTDErAQWqpchS0P"
    "o4wXZQ7ZJrgO6PD31nLSZOGVsWe2VV0ikn3UeqE4nBIuoqaBUnJPl0NQC+wlT4xtVEXYlE"
    "FRolukhooa36asR1ZZj7ASShXYM7kb3Ivg7qr1/9PVoJRgN0ZovYzQeFGMagJX9dGEZ+os"
    "ec88k+6451l4my4aA29/Bp5CbgXsO5W4GvMusNAU2Bay7lToFjUyXtBat2XrrjzqWcwN7E"
    "WNOwXeBSp9KrBuTLt6LfAi3lUuEh/haCLxGV6xJrehqUdWR0RzskWCoPczs0WCz0K8MHCL"
    "ZotEFN/T9ciaEm9FIG1KvP1dcpok6hkZTYE01PlM4oUKZjO1vM06sb9H8sXFyUNxDMZDQV"
    "b3Mm35tRevZJh3EiidsfSMfrZ80qbJKnpmVhFZYDOjBElO5YWAYTuOqr8W3JiT6fysiJcJ"
    "qJRuJnktbpstseNILT7HzrwMzinGOjsGKyK+kwpZ8GSmTfSxDaqIZufL5blDsrj36Q85ff"
    "XP3a6Qu3KHNCcV1KP+cE8qSBU1ZS7NkHr+9nPD1BSzStcFA3tpLHJcM9VXTn2wBF8DbbpO"
    "mEwdHm8+wBiHNvfbZSnePX7CbNPyYr9hJj/Js8Q2/Mn9HUsce3WptgzWBPS1Kta2DeC3Vm"
    "Yt5dZS72/jDq9nFjA/MGdXbCgnSoVXBylWmvwQkUrXFKkOVrKSyWHi1Xw74AmIpFvpeQAd"
    "mNd4p59WkFhlOCYDDNWOyY2gijgm5SemsSiybYvCpEGy0PeyqE9wBNJB2Cbim9GiUa5RWb"
    "7J53SV+S3pwLEuty2PRJ5vsjCduYBYzmelI9va2JlK2Y3BrOYc5V/i8cyOPKkdcQH9Afrf"
    "XhetKJtXUDbpf4vOkjIYBzwHiPN5IZzPc3A+V+AcqJFSQAdMezwDrO0F54tCOF/k4HyRxh"
    "me2aSm+uC1yo8c5TrAMb2rctQhcIrBPSRflL77FOsBDPE8Z3H752G+k2DjK77rdd8F5EnP"
    "QbI8HF4srVIfkYmw1Lgee80G+saCLAF0lOcAhnYC6IsiMCdjHRGQL1K6JOfj4flJ/rmfDt"
    "+hG/18t0b1NlL8OZ4pvgWmCEr49Hscr2g/A/aykGK4zNELl2m1IODKNp/VC1+U5xBg3veS"
    "14Su1SP+cEPX7lKvKPU4ZyP1ukg9wCgi9iwPe1A7qnzoN0PcTdA3L+jruM6SwBtm7ONy8Y"
    "7xNYiXQLw5XtOUDn3ZafZNGkITLK5rNLRFbHM61zLiof6Vk7yIKA5pngqJqmFoTlDUK56o"
    "TNNUu0TUGZqHEBnYSVa/mFQlEPbJDxDdncRs4Y7iuEMaYXVOZoTlWd/PrRvaNcvJ3P5i9v"
    "X/0Vz9PA=="
)
