SELECT
  COUNT(*)
FROM "p1_users" AS "u"
WHERE
  "u"."user_id" IN (
    SELECT
      "s6"."user_id"
    FROM (
      SELECT
        "s5"."user_id" AS "user_id",
        "s5"."t" AS "t"
      FROM (
        SELECT DISTINCT
          "e1"."user_id" AS "user_id",
          "e1"."time" AS "t"
        FROM "p1_events" AS "e1"
        WHERE
          "e1"."event" = {p2: String}
          AND "e1"."time" >= {p0: DateTime64(6)}
          AND "e1"."time" < {p1: DateTime64(6)}
      ) AS s5
      LEFT JOIN (
        SELECT DISTINCT
          "s2"."user_id" AS "user_id",
          "s2"."t" AS "t",
          1 AS "hit"
        FROM (
          SELECT DISTINCT
            "e1"."user_id" AS "user_id",
            "e1"."time" AS "t"
          FROM "p1_events" AS "e1"
          WHERE
            "e1"."event" = {p2: String}
            AND "e1"."time" >= {p0: DateTime64(6)}
            AND "e1"."time" < {p1: DateTime64(6)}
        ) AS s2
        INNER JOIN "p1_events" AS "e3"
          ON "s2"."user_id" = "e3"."user_id"
        WHERE
          "e3"."event" = {p3: String}
          AND "e3"."time" > "s2"."t"
          AND "e3"."time" <= "s2"."t" + INTERVAL 259200 SECOND
      ) AS m4
        ON "s5"."user_id" = "m4"."user_id" AND "s5"."t" = "m4"."t"
      WHERE
        COALESCE("m4"."hit", 0) = 0
        AND "s5"."t" + INTERVAL 259200 SECOND <= {p4: DateTime64(6)}
    ) AS s6
  )
