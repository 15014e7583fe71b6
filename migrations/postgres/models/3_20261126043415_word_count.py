from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True

# Generated, plus the UPDATE that counts the words users already have.


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        ALTER TABLE "users" ADD "word_count" INT NOT NULL DEFAULT 0;
        UPDATE "users" SET "word_count" = (
            SELECT COUNT(*) FROM "words" WHERE "words"."user_id" = "users"."id"
        );"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        ALTER TABLE "users" DROP COLUMN "word_count";"""


MODELS_STATE = (
    "eJztXGtT2zgU/Ssaf6IzLAMJhS67szMBQpsWkk4Sym5LxyNiJdFgy65lN2S6/PeV5PdDxg"
    "4hJFl/6RBJV7LPla7ukY77SzFMDel0r4/GNqLToXmPiHICfikEGoj9kVu/CxRoWVEtL3Dg"
    "nS4MbK+l6vCmogreUceGI4fVjqFOESvSEB3Z2HKwyUdTegQBTKmLNOCbA2G+C+6JOSPgbg"
    "6wQ8HHmyHAGjCJPgc7EGiuYQFzDJwppkCMD3RzQgExWRPWIXmzx4fXzBEbH5PJi4/kEvzD"
    "RezNJ8iZIpuN9+07K8ZEQw+IBj+te3WMka4lYMYa70CUq87cEmXX153zC9GSv8WdOjJ11y"
    "BRa2vuTE0SNnddrO1xG143QQTZ0EFaDHTi6rrvpaDIe2JW4NguCh9Viwo0NIauzl2n/Dl2"
    "yYh7DIiR+D+Hf/mPFmumqt3eUB20h6qqZDzNHyHlEr9oZBI+SzBxOFC/Hr1+I0BEqcIHOP"
    "vQ6u80j94ICEzqTGxRKeBSHoUhdKBnKkCPUB5DA+vzKkhHFstEOygogDtAas2wjbBEDxZm"
    "tSp0snieMywcbKB8TJOWKVw133Qv+GM5+EaB53UBHnau2oNh6+oz796g9Icu8GoN27ymIU"
    "rnqdIdzx8mi6FeiA07ATed4QfAf4KvvW477bWw3fCrwp8Juo6psjCnQi2OSVAcFCXc7FKk"
    "LeDjmNkSHOyvjtq/y/evjX6y/W8RFyctay+vs5dHNuK4L+DlpOUWBms2j6HWY4mePwM3xO"
    "3+YnkqdttqXmbZIY40bAcWKVczuDbRuRP+EL81Dg6PD981jw7fsSbiQcOS4wJ/d7pDlvTw"
    "nH18n5tPcriy6F6YNsIT8gnNBcgd9kSQjFAOqD65uva72TBwH4PZE5RG09KGs5DkxCcVe3"
    "f2xsgRb3/WGpy1ztuKQPgOju5n0NbUBNS8xmyYqZKwbbbKaBjpEkjgRIDD34I/c0hpf2I0"
    "U3LJrqjZLaa5vE0FfusZcBYJwcy0tV0www5jn1ME6GiKNJeRyjs0ZnMHQKIBOHaQzbgo2E"
    "HEdCecprIuLB1ygiohtssf4mlG+03hI/G23ujeVsEafQtXR1jBwPheiQFL41TZEOVPx+cx"
    "3zWPT7sFhJfhwIfPAHs2hXabuEYmQCUzvNA6hTR7hfWJV0rrfavTPQFwwmC9JYzBnp8A9n"
    "7aLXnf67G/J6bJ/m63Bv+cAATpPL12JK4x4IOqIzJxpuzn2wI3fGn1BW9+m9rpu35Fg9c8"
    "prPucK1UT7vjpluYkW1IBlaWXoWxL9fRTzjZMyty8nY5mDsttVY0l8ch9voGrbBDpKwWym"
    "bXjJAuZ7OIgGVR30GqlxAsukWk+1jrjaLbvmF2aHZLLtutfrfTfX8CdARtwlC/Jf32lw5v"
    "4K09/jtqZaOg3SKbx8F+id3jYF+6ffCqtOuQJfXcwIC6Ll0YKdMtWhjNxvFRuCb4j6LlML"
    "hqXV7mrok7rGNnLkX3QjehFNqscQrfMbfePISLInbv+vSyDT7322edQafXTe7BopIXsQLs"
    "0b5+u3WZDvF4PMYj9sQLwZ5rXeNeBndXHv+Ls9CkZZ2ErnUSqkPqqGFKuZjDZX3U5/7r7H"
    "kvPRMHPc/L8MIu6gRvdQmexG8l8juZu+r0LsjQJNiWyu5k6JZNMjZor1tydlcd9TzjGvay"
    "yZ0E76dzOxnWdWq3Xht8fcW77FMxfp1VDdGYRY3o05fmwX3hMy/Nb/xuNgzcspfmsUmVf2"
    "mejgJLgLTWIbyGDkGgnqNCCLwh1yDwFyqpQGh5PAjZfwDx4gxPIV33UKBcI4BtIRqgQhvg"
    "qfezMoNn9LNkdXytDXimNgAZEOv5pwIS3XZgsJwzgNcFN8Hfm40yBJ61kjJ4UZdMJCxIqY"
    "jiU0inVXDOGK7zmcuCiDfellFUsFZSxEVdivEgim2kqTYLRUQ8X3ZPLGCaedarpJr7e7+/"
    "7A75UkyzVhfLZ/32qotFiBqZLsnxejFXCo1WR5f213iTznAleR4aFxalP7NMeuDUt7/41E"
    "c6lIQzycedG7bGZPl/jhDr2UAFwuBthEhk7c8DaMtI+eNL8j6BVQ7vCzCU877QUWV4H28M"
    "IOBcEWAaXof52nD+sfPFoD8IBeJ5lG+RLnLYXqQIF7vAPRJKXB2SicsQ8qThCWV50DyWJS"
    "SE5eKg2qk15avljfnnd3I6E7TfQhZzsF/u4rfo5jfDG+OLowrGgc0W4twshXOzAOdmFmf2"
    "zJjgfJooRzpptYVYsxlZclIXzuoM3OgBGpYuERpLDpwik4WAXjcdw0pwDvfTCkDHbVY3pR"
    "VlNUAflYE5TaRjIB9lIkeoSciCXCzOSVqujv42XzbXWIY0x4GTHPIhn7NB+xXOV7CaCXtc"
    "KjAcF8SF42xYqM/o5Ohv7xmda2kLej1pWXt9XbyeowrKHOQIyW5+LC2p911xYCXeodr/U+"
    "rrn2JUXJ+R1Rauzc1di7kSfE82XOkyMmFVf8tU4hJyTG2qFmXmBWjn2NaYl8Ccf2tQlQIF"
    "NvWXCan7KavK5+1B8/oGNQ2kDi2KqkAZGdRgZsGMf/VXPUvJs6+/GFzndKX+oKD+P+M2W6"
    "tdaz5eUdTQQjYeTZUcWYNfs1skbIBRm6eUDXIYap35eukFfiKbVrxkjZls4Q3ri2if+aKq"
    "gLDffAvRfRFNBhuRi8KzCH8c9LqSa5PIJJ3x4pED/gU6ppuYHhWAy8FI5LkBpjtXrb/TcJ"
    "9d9k7TCSzv4LSaInb5m9njf3FXawg="
)
