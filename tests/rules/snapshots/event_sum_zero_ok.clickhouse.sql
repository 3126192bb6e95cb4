SELECT
  COUNT(*)
FROM "p1_users" AS "u"
WHERE
  NOT (
    "u"."user_id" IN (
      SELECT
        "e1"."user_id"
      FROM "p1_events" AS "e1"
      WHERE
        "e1"."event" = {p2: String}
        AND "e1"."time" >= {p0: DateTime64(6)}
        AND "e1"."time" < {p1: DateTime64(6)}
      GROUP BY
        "e1"."user_id"
      HAVING
        NOT (
          COALESCE(SUM("e1"."amount"), 0) < {p3: Float64}
        )
    )
  )
